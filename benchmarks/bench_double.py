"""The double's own ceiling, with no reactor running: inserts/s, claims/s, events/s, drain time.

Every figure goes through the real ``AsyncMongoClient`` against a fresh :class:`MongoDouble`, with
the indexes and the queries the reactor sends (``/work/notes/claim-queries.md``):

- ``inserts``: ``insert_one`` one after another, ``insert_many`` in batches of 1,000, and two
  ``insert_many`` calls of 100,100 documents each;
- ``claims``: tier-2 ``find_one_and_update`` claims with ``JOBS`` documents in ``jobs``, most
  of them finished (status ``succeeded``), latency p50/p99 and claims/s;
- ``events``: insert -> change event latency while another client claims continuously, and
  the rate at which one stream delivers a burst of inserts;
- ``drain``: a backlog of ``JOBS`` queued jobs claimed and finished by concurrent workers
  making the reactor's per-job calls (claim, renew, result ``replace_one``, status
  ``update_one``) while a change stream reads every event.

The double runs in a process of its own, as ``reactor dev-mongo`` runs it beside ``reactor run``
(``BENCH_DOUBLE_IN_PROCESS=1`` runs it in a thread of the benchmark, as the pytest fixtures do,
sharing one interpreter lock with the clients). ``BENCH_DOUBLE_JOBS`` (default 20,000) sets the
collection size, for a quick run or for
comparing with older doubles that cannot hold that many; ``BENCH_DOUBLE_ONLY`` (comma-separated
names) runs only some of the four.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from bson import ObjectId
from pymongo import ASCENDING, DESCENDING, AsyncMongoClient, IndexModel, ReturnDocument
from pymongo.asynchronous.collection import AsyncCollection

from reactor.testing import MongoDouble

JOBS = int(os.environ.get("BENCH_DOUBLE_JOBS", "20000"))
ONLY = set(filter(None, os.environ.get("BENCH_DOUBLE_ONLY", "").split(",")))
IN_PROCESS = os.environ.get("BENCH_DOUBLE_IN_PROCESS") == "1"
QUEUED = 1000  # of JOBS in the claims run; the rest are finished
CLAIMS = 500
INSERTS = 2000
EVENT_SAMPLES = 300
BURST = 5000
BIG_BATCH = 100_100
WORKERS = 8
LEASE = timedelta(seconds=30)
Doc = dict[str, Any]
Coll = AsyncCollection[Doc]

JOB_INDEXES = [
    IndexModel(
        [("job_id", ASCENDING)],
        name="job_id_unique",
        unique=True,
        partialFilterExpression={"job_id": {"$type": "string"}},
    ),
    IndexModel([("status", ASCENDING), ("lease_expires_at", ASCENDING)], name="claim"),
    IndexModel(
        [("status", ASCENDING), ("priority", DESCENDING), ("_id", ASCENDING)], name="claim_order"
    ),
    IndexModel([("status", ASCENDING), ("run_at", ASCENDING)], name="due"),
    IndexModel(
        [("cancel_requested", ASCENDING)],
        name="cancel_requested",
        partialFilterExpression={"cancel_requested": True},
    ),
    IndexModel([("status", ASCENDING), ("cancelled_at", ASCENDING)], name="cancelled"),
]
STREAM_PIPELINE: list[Doc] = [
    {
        "$match": {
            "$or": [
                {"operationType": {"$in": ["insert", "replace"]}},
                {"operationType": "update", "updateDescription.updatedFields.status": "queued"},
                {"operationType": {"$in": ["drop", "dropDatabase", "rename", "invalidate"]}},
            ]
        }
    },
    {"$project": {"operationType": 1, "documentKey": 1, "fullDocument.status": 1}},
]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def summary(latencies_ms: list[float]) -> Doc:
    return {
        "n": len(latencies_ms),
        "p50_ms": round(percentile(latencies_ms, 50), 3),
        "p99_ms": round(percentile(latencies_ms, 99), 3),
    }


def job(i: int, status: str | None = "queued") -> Doc:
    doc: Doc = {"job_id": f"j{i}", "command": "echo", "args": {"i": i}}
    if status is not None:
        doc["status"] = status
    return doc


async def claim(jobs: Coll, me: str) -> Doc | None:
    """Tier 2 of the reactor's claim: default priority, due now, oldest first."""
    now = datetime.now(UTC)
    return await jobs.find_one_and_update(
        {
            "status": {"$in": [None, "queued"]},
            "priority": {"$in": [None, 0]},
            "run_at": {"$not": {"$gt": now}},
        },
        {
            "$set": {
                "status": "running",
                "lease_owner": me,
                "lease_expires_at": now + LEASE,
                "started_at": now,
            },
            "$inc": {"fence": 1},
            "$max": {"attempt": 1},
            "$min": {"created_at": now},
        },
        sort=[("_id", ASCENDING)],
        return_document=ReturnDocument.BEFORE,
    )


async def finish(db: Any, claimed: Doc, me: str) -> None:
    """The reactor's per-job writes after a claim: renew, result, status."""
    jobs, now = db.jobs, datetime.now(UTC)
    fence = {
        "_id": claimed["_id"],
        "lease_owner": me,
        "fence": claimed.get("fence", 0) + 1,
        "status": {"$in": ["running", "cancelled"]},
    }
    await jobs.find_one_and_update(
        fence,
        {"$set": {"lease_expires_at": now + LEASE}},
        projection={"status": 1, "cancel_requested": 1},
    )
    await db.results.replace_one(
        {
            "job_id": claimed["job_id"],
            "$and": [
                {"$or": [{"fence": {"$lt": fence["fence"]}}, {"fence": {"$exists": False}}]},
                {"$or": [{"job_doc_id": claimed["_id"]}, {"job_doc_id": {"$exists": False}}]},
            ],
        },
        {"job_id": claimed["job_id"], "job_doc_id": claimed["_id"], "fence": fence["fence"]},
        upsert=True,
    )
    await jobs.update_one(
        fence,
        {
            "$set": {"status": "succeeded", "finished_at": now, "attempt": 1, "run": 1},
            "$unset": {"lease_owner": "", "lease_expires_at": ""},
        },
    )


async def timed(action: Callable[[], Awaitable[object]]) -> float:
    started = time.perf_counter()
    await action()
    return (time.perf_counter() - started) * 1000


async def prepare(db: Any, finished: int, queued: int) -> None:
    await db.jobs.create_indexes(JOB_INDEXES)
    await db.results.create_index("job_id", unique=True, name="job_id_unique")
    docs = [job(i, "succeeded") for i in range(finished)]
    docs += [job(finished + i) for i in range(queued)]
    for start in range(0, len(docs), 1000):
        await db.jobs.insert_many(docs[start : start + 1000])


async def bench_inserts(client: AsyncMongoClient[Doc]) -> Doc:
    db = client.bench_inserts
    await db.jobs.create_indexes(JOB_INDEXES)
    started = time.perf_counter()
    for i in range(INSERTS):
        await db.jobs.insert_one(job(i))
    one_s = time.perf_counter() - started
    docs = [job(INSERTS + i) for i in range(JOBS)]
    started = time.perf_counter()
    for start in range(0, len(docs), 1000):
        await db.jobs.insert_many(docs[start : start + 1000])
    many_s = time.perf_counter() - started
    big = client.bench_big.docs  # two insert_many calls of 100,100 documents, as PyMongo's tests do
    started = time.perf_counter()
    for _ in range(2):
        await big.insert_many([{"x": i} for i in range(BIG_BATCH)])
    big_s = time.perf_counter() - started
    return {
        "insert_one_per_s": round(INSERTS / one_s),
        "insert_many_per_s": round(JOBS / many_s),
        "documents_after": INSERTS + JOBS,
        "two_insert_many_of_100100_s": round(big_s, 1),
    }


async def bench_claims(client: AsyncMongoClient[Doc]) -> Doc:
    db = client.bench_claims
    await prepare(db, JOBS - QUEUED, QUEUED)
    latencies = [await timed(lambda: claim(db.jobs, "bench")) for _ in range(CLAIMS)]
    return {
        "documents": JOBS,
        "queued": QUEUED,
        **summary(latencies),
        "claims_per_s": round(1000 * len(latencies) / sum(latencies)),
    }


async def bench_events(uri: str) -> Doc:
    watcher: AsyncMongoClient[Doc] = AsyncMongoClient(uri)
    claimer: AsyncMongoClient[Doc] = AsyncMongoClient(uri)
    writer: AsyncMongoClient[Doc] = AsyncMongoClient(uri)
    db = writer.bench_events
    await prepare(db, JOBS - QUEUED, QUEUED)
    stop = asyncio.Event()
    claims = 0

    async def claim_continuously() -> None:
        nonlocal claims
        while not stop.is_set():
            await claim(claimer.bench_events.jobs, "claimer")
            claims += 1

    latencies: list[float] = []
    try:
        async with await watcher.bench_events.jobs.watch(
            STREAM_PIPELINE, max_await_time_ms=1000
        ) as stream:
            claiming = asyncio.create_task(claim_continuously())
            for i in range(EVENT_SAMPLES):
                doc_id = ObjectId()
                started = time.perf_counter()
                await db.jobs.insert_one({"_id": doc_id, **job(10_000_000 + i, None)})
                while (await stream.next())["documentKey"]["_id"] != doc_id:
                    pass
                latencies.append((time.perf_counter() - started) * 1000)
            stop.set()
            await claiming
            rate = await _burst_rate(db.jobs, stream)
    finally:
        for client in (watcher, claimer, writer):
            await client.close()
    return {
        "insert_to_event": summary(latencies),
        "claims_meanwhile": claims,
        "burst_events_per_s": rate,
    }


async def _burst_rate(jobs: Coll, stream: Any) -> int:
    docs = [job(20_000_000 + i, None) for i in range(BURST)]
    started = time.perf_counter()
    inserting = asyncio.create_task(jobs.insert_many(docs))
    seen = 0
    while seen < BURST:
        event = await stream.next()
        seen += event["operationType"] == "insert"
    await inserting
    return round(BURST / (time.perf_counter() - started))


async def bench_drain(client: AsyncMongoClient[Doc], watcher: AsyncMongoClient[Doc]) -> Doc:
    db = client.bench_drain
    await prepare(db, 0, JOBS)
    done = 0
    stop = asyncio.Event()

    async def worker(me: str) -> None:
        nonlocal done
        while (claimed := await claim(db.jobs, me)) is not None:
            await finish(db, claimed, me)
            done += 1

    async def read_stream() -> None:
        async with await watcher.bench_drain.jobs.watch(
            STREAM_PIPELINE, max_await_time_ms=200
        ) as stream:
            while not stop.is_set():
                await stream.try_next()

    reading = asyncio.create_task(read_stream())
    started = time.perf_counter()
    await asyncio.gather(*(worker(f"w{i}") for i in range(WORKERS)))
    seconds = time.perf_counter() - started
    stop.set()
    await reading
    return {
        "jobs": done,
        "workers": WORKERS,
        "seconds": round(seconds, 1),
        "jobs_per_s": round(done / seconds),
    }


@contextlib.contextmanager
def double_uri() -> Iterator[str]:
    """The URI of a fresh double: in a child process, or in a thread with IN_PROCESS."""
    if IN_PROCESS:
        with MongoDouble() as double:
            yield double.uri
        return
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    code = f"from reactor.testing import MongoDouble; MongoDouble(port={port}).serve_forever()"
    child = subprocess.Popen([sys.executable, "-c", code])
    try:
        deadline = time.monotonic() + 30
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
                break
            if time.monotonic() > deadline or child.poll() is not None:
                raise RuntimeError("the double did not start")
            time.sleep(0.05)
        yield f"mongodb://127.0.0.1:{port}/?replicaSet=rs0"
    finally:
        child.terminate()
        child.wait(10)


async def measure() -> Doc:
    with double_uri() as uri:
        client: AsyncMongoClient[Doc] = AsyncMongoClient(uri)
        watcher: AsyncMongoClient[Doc] = AsyncMongoClient(uri)
        runs: dict[str, Callable[[], Awaitable[Doc]]] = {
            "inserts": lambda: bench_inserts(client),
            "claims": lambda: bench_claims(client),
            "events": lambda: bench_events(uri),
            "drain": lambda: bench_drain(client, watcher),
        }
        results: Doc = {}
        try:
            for name, run in runs.items():
                if not ONLY or name in ONLY:
                    results[name] = await run()
        finally:
            await client.close()
            await watcher.close()
    results["double"] = "in process" if IN_PROCESS else "own process"
    results["load_average"] = [round(x, 2) for x in os.getloadavg()]
    return results


def main() -> Doc:
    results = asyncio.run(measure())
    print(f"double ceiling (no reactor, load {results['load_average'][0]}): {_headline(results)}")
    for name, figures in results.items():
        print(f"  {name}: {figures}")
    return results


def _headline(results: Doc) -> str:
    """inserts/s, claims/s and events/s, from whichever runs ran."""
    parts = []
    if "inserts" in results:
        inserts = results["inserts"]
        parts.append(
            f"{inserts['insert_one_per_s']} inserts/s one at a time, "
            f"{inserts['insert_many_per_s']} in batches of 1,000"
        )
    if "claims" in results:
        parts.append(f"{results['claims']['claims_per_s']} claims/s")
    if "events" in results:
        parts.append(f"{results['events']['burst_events_per_s']} events/s on one stream")
    return "; ".join(parts)


if __name__ == "__main__":
    main()
