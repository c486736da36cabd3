"""Real ``reactor run`` processes: draining on SIGTERM, stopping with abandoned threads, poison."""

from __future__ import annotations

import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pymongo
import pytest

from tests.integration.backends import Backend
from tests.integration.procs import free_port, reactor_process, readyz, start, until

Doc = dict[str, Any]


@pytest.fixture
def db_name(backend: Backend) -> Iterator[str]:
    name = f"s_{uuid.uuid4().hex[:10]}"
    yield name
    with pymongo.MongoClient(backend.uri) as client:
        client.drop_database(name)


@pytest.fixture
def sync_db(backend: Backend, db_name: str) -> Iterator[Any]:
    """A plain synchronous client's view of the test database."""
    with pymongo.MongoClient(backend.uri, tz_aware=True) as client:
        yield client[db_name]


def _result(db: Any, job_id: str, timeout_s: float) -> Doc:
    return until(lambda: db.results.find_one({"job_id": job_id, "status": {"$exists": True}}),
                 timeout_s, f"a result for {job_id}")  # fmt: skip


@pytest.mark.timeout(180)
def test_sigterm_drains_then_hands_back_and_another_reactor_finishes(
    backend: Backend, db_name: str, sync_db: Any, tmp_path: Path
) -> None:
    """SIGTERM with REACTOR_DRAIN_S=2 on a reactor running an 8 s job: /readyz turns 503
    (draining) at once, the process exits 0, and a second reactor finishes the job, attempt 1."""
    db = sync_db
    port = free_port()
    with reactor_process(backend, db_name, "first", tmp_path, drain_s=2, http_port=port) as first:
        until(lambda: readyz(port) == (200, {"status": "ready", "reasons": []}), 60, "ready")
        db.jobs.insert_one({"job_id": "long", "command": "nap", "args": {"seconds": 8}})
        until(lambda: db.jobs.find_one({"job_id": "long", "status": "running"}), 30, "running")
        with reactor_process(backend, db_name, "second", tmp_path):
            signalled = time.monotonic()
            first.send_signal(signal.SIGTERM)
            code, body = until(lambda: readyz(port), 5, "/readyz answers while draining")
            assert (code, body["reasons"]) == (503, ["draining"])
            assert first.wait(timeout=30) == 0
            exited_s = time.monotonic() - signalled
            result = _result(db, "long", timeout_s=60)
    assert exited_s < 2 + 10
    assert (result["status"], result["worker"], result["attempt"]) == ("succeeded", "second", 1)


@pytest.mark.timeout(180)
def test_sigterm_stops_even_with_an_abandoned_thread(
    backend: Backend, db_name: str, sync_db: Any, tmp_path: Path
) -> None:
    """A thread handler that hangs past its timeout is abandoned (JobTimeout recorded) and
    does not keep the process alive after SIGTERM."""
    db = sync_db
    with reactor_process(backend, db_name, "solo", tmp_path, drain_s=1) as proc:
        db.jobs.insert_one({"job_id": "stuck", "command": "hang_thread"})
        result = _result(db, "stuck", timeout_s=60)
        signalled = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    assert time.monotonic() - signalled < 1 + 10
    assert (result["status"], result["error"]["type"]) == ("failed", "JobTimeout")


@pytest.mark.timeout(300)
def test_a_job_that_kills_its_reactor_is_quarantined_and_neighbours_are_not_charged(
    backend: Backend, db_name: str, sync_db: Any, tmp_path: Path
) -> None:
    """A thread handler that kills its reactor kills it again when reclaimed and run alone, then
    fails as PoisonJob; the jobs that ran beside it succeed with attempt 1."""
    db = sync_db
    neighbours = [f"n{i}" for i in range(4)]
    procs: dict[str, subprocess.Popen[bytes]] = {}
    deaths = 0
    try:
        for name in ("a", "b"):
            procs[name] = start(backend, db_name, name, tmp_path)
        db.jobs.insert_many(
            [{"job_id": n, "command": "nap", "args": {"seconds": 2}} for n in neighbours]
            + [{"job_id": "poison", "command": "kill_reactor", "args": {"seconds": 0.5}}]
        )
        deadline = time.monotonic() + 200
        while db.results.count_documents({}) < len(neighbours) + 1:
            assert time.monotonic() < deadline, "jobs did not all end"
            for name, proc in procs.items():  # the supervisor: restart what died
                if proc.poll() is not None:
                    deaths += 1
                    procs[name] = start(backend, db_name, f"{name}{deaths}", tmp_path)
            time.sleep(0.1)
        poison = db.results.find_one({"job_id": "poison"})
        others = list(db.results.find({"job_id": {"$in": neighbours}}))
    finally:
        for proc in procs.values():
            proc.kill()
            proc.wait()
    assert poison is not None
    assert (poison["status"], poison["error"]["type"]) == ("failed", "PoisonJob")
    assert deaths == 2
    assert [(r["status"], r["attempt"]) for r in others] == [("succeeded", 1)] * len(neighbours)
