"""Dispatch latency: from a client's insert to the handler's start, for ``echo`` on the double.

The handler's start is the job's ``started_at``, stamped by the claim immediately before the
handler is called (BSON dates have millisecond resolution). Two runs: jobs inserted one at a
time (the latency a lone job sees) and a burst inserted at once (latency including queueing).
"""

from __future__ import annotations

import os
import statistics
import tempfile
from datetime import UTC, datetime
from typing import Any

import anyio
from pymongo import AsyncMongoClient

from reactor.client import new_job, wait_for_result, wait_for_results
from reactor.config import load_settings
from reactor.logging import configure
from reactor.service import Reactor
from reactor.testing import MongoDouble

SEQUENTIAL_JOBS = 200
BURST_JOBS = 500


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


async def _sequential(db: Any) -> list[float]:
    latencies = []
    for i in range(SEQUENTIAL_JOBS):
        job = new_job("echo", {"i": i}, f"seq-{i}")
        inserted = datetime.now(UTC)
        await db.jobs.insert_one(job)
        await wait_for_result(db, job["job_id"], timeout_s=30)
        doc = await db.jobs.find_one({"job_id": job["job_id"]})
        latencies.append((doc["started_at"] - inserted).total_seconds() * 1000)
    return latencies


async def _burst(db: Any) -> list[float]:
    jobs = [new_job("echo", {"i": i}, f"burst-{i}") for i in range(BURST_JOBS)]
    inserted = datetime.now(UTC)
    await db.jobs.insert_many(jobs)
    await wait_for_results(db, [j["job_id"] for j in jobs], timeout_s=120)
    docs = db.jobs.find({"job_id": {"$regex": "^burst-"}}, {"started_at": 1})
    return [(d["started_at"] - inserted).total_seconds() * 1000 async for d in docs]


async def measure() -> dict[str, dict[str, float]]:
    with MongoDouble() as double, tempfile.TemporaryDirectory() as root:
        settings = load_settings(
            mongo_uri=double.uri,
            db="bench",
            jobs_root=root,
            http_port=0,
            max_jobs=32,
            log_level="warning",
        )
        client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(double.uri, tz_aware=True)
        async with anyio.create_task_group() as tg:
            reactor = await tg.start(Reactor(settings).serve)
            runs = {
                "sequential": await _sequential(client.bench),
                "burst": await _burst(client.bench),
            }
            reactor.stop()
        await client.close()
    return {
        name: {
            "jobs": len(v),
            "p50_ms": percentile(v, 50),
            "p99_ms": percentile(v, 99),
            "mean_ms": statistics.fmean(v),
        }
        for name, v in runs.items()
    }


def main() -> dict[str, dict[str, float]]:
    configure("json", "warning")
    report = anyio.run(measure)
    print(f"dispatch latency, insert -> handler start, echo on the double ({os.cpu_count()} cores)")
    for name, row in report.items():
        print(
            f"  {name:<10} jobs={row['jobs']:<4} p50={row['p50_ms']:.1f} ms  "
            f"p99={row['p99_ms']:.1f} ms  mean={row['mean_ms']:.1f} ms"
        )
    return report


if __name__ == "__main__":
    main()
