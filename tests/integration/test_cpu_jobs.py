"""CPU jobs that hang or crash fail alone; the pool and the reactor keep serving."""

from __future__ import annotations

from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from reactor.client import new_job, wait_for_result, wait_for_results
from reactor.config import Settings
from reactor.registry import Registry
from tests.integration.reactors import running

Db = AsyncDatabase[dict[str, Any]]


async def test_a_hung_cpu_job_is_killed_at_its_timeout(
    settings: Settings, db: Db, registry: Registry
) -> None:
    """A CPU job that never returns fails with 'timeout after 1 s' and the next CPU job runs."""
    async with running(settings, registry) as reactor:
        await db.jobs.insert_one(new_job("cpu_hang", {}, "hang"))
        hung = await wait_for_result(db, "hang", timeout_s=30)
        await db.jobs.insert_one(new_job("cpu_square", {"n": 3}, "next"))
        after = await wait_for_result(db, "next", timeout_s=30)
        restarts = dict(reactor.pool.restarts)
    assert hung["status"] == "failed"
    assert (hung["error"]["type"], hung["error"]["message"]) == ("JobTimeout", "timeout after 1 s")
    assert after["result"]["square"] == 9
    assert restarts["timeout"] == 1


async def test_a_crashing_worker_fails_only_its_own_job(
    settings: Settings, db: Db, registry: Registry
) -> None:
    """os._exit(1) in one CPU job fails it with the exit code; three concurrent ones succeed."""
    async with running(settings, registry, cpu_workers=4, max_jobs=8):
        naps = [new_job("cpu_nap", {"seconds": 1.0}, f"nap-{i}") for i in range(3)]
        await db.jobs.insert_many([*naps, new_job("cpu_exit", {"code": 1}, "crash")])
        results = await wait_for_results(db, ["crash"] + [j["job_id"] for j in naps], timeout_s=60)
    crash = results.pop("crash")
    assert crash["status"] == "failed"
    assert crash["error"]["type"] == "WorkerCrashed"
    assert "exited with code 1" in crash["error"]["message"]
    assert [r["status"] for r in results.values()] == ["succeeded"] * 3
    assert all(r["attempt"] == 1 for r in results.values())
    assert len({r["result"]["pid"] for r in results.values()}) == 3
