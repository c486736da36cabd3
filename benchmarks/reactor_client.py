"""The bench's client of mongo-reactor (see ``lineproto.py``): inserts jobs, watches results.

    python benchmarks/reactor_client.py MONGO_URI

Jobs are inserted with PyMongo as any client would; results are read from one change stream on
``results`` opened at start, before any job exists, so none is missed and no request polls.
Latency is ``handler_t`` (read on the handler's first line, ``bench_handlers.echo_stamped``)
minus the monotonic time taken right before the insert.
"""

from __future__ import annotations

import itertools
import shutil
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pymongo
from lineproto import Progress, serve

RESULT_EVENTS = [{"$match": {"operationType": {"$in": ["insert", "replace"]}}}]
INSERT_BATCH = 5_000
Doc = dict[str, Any]


class ReactorClient:
    def __init__(self, uri: str) -> None:
        self.client: pymongo.MongoClient[dict[str, Any]] = pymongo.MongoClient(uri)
        self.db = self.client.bench
        self.stream = self.db.results.watch(RESULT_EVENTS, max_await_time_ms=200)
        self._batches = itertools.count()

    def _jobs(self, n: int, command: str = "echo_stamped") -> list[dict[str, Any]]:
        tag = f"c{next(self._batches)}"
        return [{"job_id": f"{tag}-{i}", "command": command, "args": {"i": i}} for i in range(n)]

    def _results(self, wanted: set[str], timeout_s: float) -> Iterator[tuple[float, Doc]]:
        """Yield (monotonic time seen, result document) until every wanted job has one."""
        deadline = time.monotonic() + timeout_s
        while wanted:
            event = self.stream.try_next()
            if event is None:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{len(wanted)} results missing after {timeout_s} s")
                continue
            doc = event["fullDocument"]
            if doc["job_id"] in wanted:
                wanted.discard(doc["job_id"])
                yield time.monotonic(), doc

    def warmup(self, n: int, timeout_s: float, progress: Progress) -> float:
        jobs = self._jobs(n)
        started = time.monotonic()
        self.db.jobs.insert_many(jobs)
        for _ in self._results({j["job_id"] for j in jobs}, timeout_s):
            pass
        return time.monotonic() - started

    def latency(self, n: int, progress: Progress) -> dict[str, list[float]]:
        """One job at a time: insert -> handler start, and insert -> result seen (ms)."""
        handler_ms, result_ms = [], []
        for job in self._jobs(n):
            sent = time.monotonic()
            self.db.jobs.insert_one(job)
            for seen, doc in self._results({job["job_id"]}, 60):
                if doc["status"] != "succeeded":
                    raise RuntimeError(f"job {job['job_id']} ended {doc['status']}: {doc}")
                handler_ms.append(round((doc["result"]["handler_t"] - sent) * 1000, 3))
                result_ms.append(round((seen - sent) * 1000, 3))
        return {"handler_ms": handler_ms, "result_ms": result_ms}

    def burst(self, n: int, progress: Progress) -> dict[str, float]:
        """``n`` jobs in one insert_many; seconds until the last result is seen."""
        jobs = self._jobs(n)
        started = time.monotonic()
        self.db.jobs.insert_many(jobs)
        seen = [t for t, _ in self._results({j["job_id"] for j in jobs}, 600)]
        return {"jobs": n, "seconds": seen[-1] - started}

    def queue(self, n: int, progress: Progress) -> list[str]:
        """Insert ``n`` jobs without waiting (a backlog queued before a reactor starts)."""
        jobs = self._jobs(n)
        for start in range(0, n, INSERT_BATCH):
            self.db.jobs.insert_many(jobs[start : start + INSERT_BATCH])
        return [j["job_id"] for j in jobs]

    def await_results(
        self, job_ids: list[str], since: float, marks: list[int], progress: Progress
    ) -> dict[str, float]:
        """Seconds from ``since`` to the first and the last result; progress at ``marks``."""
        times = []
        for count, (seen, _) in enumerate(self._results(set(job_ids), 1800), start=1):
            times.append(seen)
            if count in marks:
                progress(results=count, at_s=seen - since)
        return {"first_s": times[0] - since, "last_s": times[-1] - since}

    def ocr(self, pages: list[str], jobs_root: str, tag: str, progress: Progress) -> float:
        """One ``ocr`` job per page, its page copied into the job's directory; wall seconds."""
        from reactor import workdir

        jobs = []
        for i, page in enumerate(pages):
            job = {"job_id": f"{tag}-{i}", "command": "ocr", "args": {"image": Path(page).name}}
            shutil.copy(page, workdir.prepare(Path(jobs_root), job["job_id"]))
            jobs.append(job)
        started = time.monotonic()
        self.db.jobs.insert_many(jobs)
        for _, doc in self._results({j["job_id"] for j in jobs}, 900):
            if doc["status"] != "succeeded":
                raise RuntimeError(f"OCR job {doc['job_id']} ended {doc['status']}: {doc}")
        return time.monotonic() - started


def main() -> None:
    client = ReactorClient(sys.argv[1])
    ops = {
        name: getattr(client, name)
        for name in ("warmup", "latency", "burst", "queue", "await_results", "ocr")
    }
    serve(ops)


if __name__ == "__main__":
    main()
