"""Real ``reactor run`` processes: shared work, no doubles, and a SIGKILL loses nothing."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pymongo
import pytest
from backends import Backend

JOBS = 1000


@contextmanager
def reactor_process(backend: Backend, db: str, name: str, tmp_path: Path) -> Iterator[Any]:
    env = {
        **os.environ,
        "REACTOR_MONGO_URI": backend.uri,
        "REACTOR_DB": db,
        "REACTOR_JOBS_ROOT": str(tmp_path / "jobs"),
        "REACTOR_LEASE_S": "2",
        "REACTOR_HTTP_PORT": "0",
        "REACTOR_LOG_FORMAT": "json",
        "REACTOR_MAX_JOBS": "8",
        "REACTOR_WORKER_NAME": name,
    }
    with open(tmp_path / f"{name}.log", "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "reactor.cli", "run"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            yield proc
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=60)


def wait_for_count(results: Any, n: int, timeout_s: float) -> int:
    """Block on the results change stream until ``n`` results exist."""
    with results.watch(max_await_time_ms=500) as stream:
        deadline = _deadline(timeout_s)
        while (count := results.count_documents({})) < n:
            assert _deadline(0) < deadline, f"only {count} of {n} results"
            stream.try_next()
    return count


def _deadline(seconds: float) -> float:
    import time

    return time.monotonic() + seconds


@pytest.mark.timeout(400)  # 1,000 jobs through real processes; about 25 s on an idle machine
def test_two_processes_share_jobs_and_survive_a_sigkill(backend: Backend, tmp_path: Path) -> None:
    """1,000 seed-format jobs across two reactor processes, one SIGKILLed mid-run: 1,000 results,
    each job succeeded, and only jobs the killed process held ran a second attempt."""
    db_name = f"p_{uuid.uuid4().hex[:10]}"
    client: pymongo.MongoClient[dict[str, Any]] = pymongo.MongoClient(backend.uri)
    db = client[db_name]
    try:
        with (
            reactor_process(backend, db_name, "left", tmp_path) as left,
            reactor_process(backend, db_name, "right", tmp_path),
        ):
            db.jobs.insert_many(
                [
                    {"job_id": f"p{i}", "command": "sleep", "args": {"seconds": 0.02}}
                    for i in range(JOBS)
                ]
            )
            wait_for_count(db.results, JOBS // 4, timeout_s=120)
            left.send_signal(signal.SIGKILL)
            left.wait(timeout=30)
            wait_for_count(db.results, JOBS, timeout_s=180)
        results = list(db.results.find())
        assert len(results) == JOBS
        assert len({r["job_id"] for r in results}) == JOBS
        assert {r["status"] for r in results} == {"succeeded"}
        rerun = [r for r in results if r["attempt"] > 1]
        assert all(r["worker"] == "right" for r in rerun)
        assert len(rerun) <= 8  # at most the killed process's in-flight jobs
        assert {r["worker"] for r in results} == {"left", "right"}
    finally:
        client.drop_database(db_name)
        client.close()
