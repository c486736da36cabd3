"""Real ``reactor run`` processes: shared work, no doubles, and a SIGKILL loses nothing."""

from __future__ import annotations

import json
import signal
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pymongo
import pytest

from tests.integration.backends import Backend
from tests.integration.procs import reactor_process

JOBS = 1000


def wait_for_count(results: Any, n: int, timeout_s: float) -> int:
    """Block on the results change stream until ``n`` results exist."""
    with results.watch(max_await_time_ms=500) as stream:
        deadline = _deadline(timeout_s)
        while (count := results.count_documents({})) < n:
            assert _deadline(0) < deadline, f"only {count} of {n} results"
            stream.try_next()
    return count


def _reclaims_before(moment: datetime, *logs: Path) -> int:
    """``job_reclaimed`` lines logged before ``moment`` (a lease that expired under load)."""
    count = 0
    for path in logs:
        for line in path.read_text().splitlines():
            if '"job_reclaimed"' in line:
                event = json.loads(line)
                if datetime.fromisoformat(event["timestamp"]) < moment:
                    count += 1
    return count


def _deadline(seconds: float) -> float:
    import time

    return time.monotonic() + seconds


@pytest.mark.timeout(400)  # 1,000 jobs through real processes; about 25 s on an idle machine
def test_two_processes_share_jobs_and_survive_a_sigkill(backend: Backend, tmp_path: Path) -> None:
    """1,000 seed-format jobs across two reactor processes, one SIGKILLed mid-run: 1,000 results,
    each job succeeded once, no reclaim was charged as an attempt, and the survivor reclaimed at
    most the killed process's 8 in-flight jobs (plus any lease that expired under load before
    the kill, which at-least-once allows and the logs show)."""
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
            killed_at = datetime.now(UTC)
            left.send_signal(signal.SIGKILL)
            left.wait(timeout=30)
            wait_for_count(db.results, JOBS, timeout_s=180)
        results = list(db.results.find())
        assert len(results) == JOBS
        assert len({r["job_id"] for r in results}) == JOBS
        assert {r["status"] for r in results} == {"succeeded"}
        assert {r["attempt"] for r in results} == {1}  # reclaims are not charged
        rerun = [r for r in results if r["fence"] > 1]  # claimed more than once
        early = _reclaims_before(killed_at, tmp_path / "left.log", tmp_path / "right.log")
        assert len(rerun) <= 8 + early
        assert {r["worker"] for r in results} == {"left", "right"}
    finally:
        client.drop_database(db_name)
        client.close()
