"""Insert -> change event latency on the double while another client claims continuously.

One process inserts jobs one at a time into ``jobs`` and times each until its insert event
arrives on a change stream opened with the reactor's own pipeline. Meanwhile a separate process
runs the reactor's tier-2 claim (``find_one_and_update`` with a sort) in a tight loop, so every
event has to get past a stream of other commands. ``jobs`` gets the reactor's indexes and is
filled with finished documents first: a double that served the claim by scanning would pay for
each of them.

``--double thread`` runs the double in this process (as tests do); ``--double process`` runs it
in its own process (``reactor dev-mongo``), so the figure is the double's alone.

    python benchmarks/bench_event_latency.py --finished 1000 --samples 300 --gap-ms 50
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import multiprocessing
import os
import random
import re
import statistics
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pymongo import AsyncMongoClient, MongoClient, ReturnDocument

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_double import JOB_INDEXES, LEASE  # the reactor's indexes, shared

ROOT = Path(__file__).resolve().parent.parent
PIPELINE: list[dict[str, Any]] = [
    {"$match": {"$or": [{"operationType": {"$in": ["insert", "replace"]}}]}},
    {"$project": {"operationType": 1, "documentKey": 1, "fullDocument.seq": 1}},
]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


@contextmanager
def double(mode: str) -> Any:
    """The URI of a double running in this process (``thread``) or in its own (``process``)."""
    if mode == "thread":
        from reactor.testing import MongoDouble

        with MongoDouble() as served:
            yield served.uri
        return
    child = subprocess.Popen(
        [sys.executable, "-m", "reactor.cli", "dev-mongo", "--port", "0"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    line = child.stdout.readline()
    match = re.search(r"mongodb://\S+", line)
    try:
        if match is None:
            raise RuntimeError(f"the double did not start: {line!r}")
        yield match.group(0)
    finally:
        child.terminate()
        child.wait(10)


def claim_forever(uri: str, ready: Any, stop: Any, counter: Any) -> None:
    """The other client: the reactor's default-tier claim, as fast as the double answers."""
    with MongoClient(uri) as client:
        jobs = client.bench.jobs
        ready.set()
        while not stop.is_set():
            now = dt.datetime.now(dt.UTC)
            jobs.find_one_and_update(
                {
                    "status": {"$in": [None, "queued"]},
                    "priority": {"$in": [None, 0]},
                    "run_at": {"$not": {"$gt": now}},
                },
                {
                    "$set": {
                        "status": "running",
                        "lease_owner": "bench",
                        "lease_expires_at": now + LEASE,
                        "started_at": now,
                    },
                    "$inc": {"fence": 1},
                    "$max": {"attempt": 1},
                    "$min": {"created_at": now},
                },
                sort=[("_id", 1)],
                return_document=ReturnDocument.BEFORE,
            )
            with counter.get_lock():
                counter.value += 1


async def measure(uri: str, finished: int, samples: int, gap_s: float) -> dict[str, float]:
    async with AsyncMongoClient[dict[str, Any]](uri) as client:
        jobs = client.bench.jobs
        await jobs.drop()
        await jobs.create_indexes(JOB_INDEXES)
        for start in range(0, finished, 1000):
            batch = range(start, min(finished, start + 1000))
            await jobs.insert_many([{"job_id": f"done-{i}", "status": "succeeded"} for i in batch])
        ctx = multiprocessing.get_context("spawn")
        ready, stop, counter = ctx.Event(), ctx.Event(), ctx.Value("i", 0)
        claimer = ctx.Process(target=claim_forever, args=(uri, ready, stop, counter))
        claimer.start()
        try:
            await asyncio.to_thread(ready.wait, 30)
            latencies_ms, acks_ms = await _insert_and_time(jobs, samples, gap_s)
        finally:
            stop.set()
            await asyncio.to_thread(claimer.join, 30)
    return {
        "finished_docs": finished,
        "samples": len(latencies_ms),
        "claims_during_run": counter.value,
        "p50_ms": percentile(latencies_ms, 50),
        "p99_ms": percentile(latencies_ms, 99),
        "max_ms": max(latencies_ms),
        "mean_ms": statistics.fmean(latencies_ms),
        "insert_ack_p50_ms": percentile(acks_ms, 50),
    }


async def _insert_and_time(
    jobs: Any, samples: int, gap_s: float
) -> tuple[list[float], list[float]]:
    """Per insert: ms until its event arrived, and ms until the insert itself was acknowledged.

    A watcher task keeps a getMore waiting at the double (as the reactor's stream does); each
    insert follows ``gap_s`` after the previous event, so that getMore is parked when it comes.
    """
    arrived: dict[int, asyncio.Future[float]] = {}
    loop = asyncio.get_running_loop()

    async def watch(stream: Any) -> None:
        async for event in stream:
            seq = event["fullDocument"].get("seq")
            if seq in arrived and not arrived[seq].done():
                arrived[seq].set_result(time.perf_counter())

    latencies_ms: list[float] = []
    acks_ms: list[float] = []
    async with await jobs.watch(PIPELINE, max_await_time_ms=1000) as stream:
        watcher = asyncio.create_task(watch(stream))
        for seq in range(samples):
            await asyncio.sleep(gap_s * random.uniform(0.8, 1.2))
            arrived[seq] = loop.create_future()
            started = time.perf_counter()
            await jobs.insert_one({"job_id": f"new-{seq}", "status": "queued", "seq": seq})
            acks_ms.append((time.perf_counter() - started) * 1000)
            latencies_ms.append((await asyncio.wait_for(arrived[seq], 30) - started) * 1000)
        watcher.cancel()
    return latencies_ms, acks_ms


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--double", choices=["thread", "process"], default="thread")
    parser.add_argument("--finished", type=int, default=1000)
    parser.add_argument("--samples", type=int, default=300)
    parser.add_argument(
        "--gap-ms", type=float, default=50, help="pause between inserts (above one claim's time)"
    )
    ns = parser.parse_args(argv)
    load_before = os.getloadavg()[0]
    with double(ns.double) as uri:
        report = asyncio.run(measure(uri, ns.finished, ns.samples, ns.gap_ms / 1000))
    report["double"] = ns.double
    report["load_1min"] = round((load_before + os.getloadavg()[0]) / 2, 2)
    print(
        f"insert -> event while another client claims ({ns.double} double, "
        f"{ns.finished} finished docs, load {report['load_1min']}): "
        f"p50={report['p50_ms']:.1f} ms p99={report['p99_ms']:.1f} ms "
        f"max={report['max_ms']:.1f} ms, {report['claims_during_run']} claims meanwhile; "
        f"the insert's own reply p50={report['insert_ack_p50_ms']:.1f} ms"
    )
    return report


if __name__ == "__main__":
    main()
