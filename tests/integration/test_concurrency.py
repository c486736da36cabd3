"""Bounds on jobs in flight hold, and several reactors share one database without doubles."""

from __future__ import annotations

from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from reactor.client import new_job, wait_for_results
from reactor.config import Settings
from reactor.registry import Registry
from tests.integration.jobs_lib import Tally
from tests.integration.reactors import running

Db = AsyncDatabase[dict[str, Any]]


async def test_the_global_bound_stops_claiming(
    settings: Settings, db: Db, registry: Registry, tally: Tally
) -> None:
    """With max_jobs in flight, the rest stay queued until a slot frees."""
    gate = tally.gate
    async with running(settings, registry, max_jobs=2) as reactor:
        await db.jobs.insert_many([new_job("gated", {}, f"g{i}") for i in range(5)])
        await gate.until_waiting(2)
        assert await db.jobs.count_documents({"status": "running"}) == 2
        assert reactor.admission.in_flight == 2
        gate.open.set()
        results = await wait_for_results(db, [f"g{i}" for i in range(5)], timeout_s=30)
    assert {r["status"] for r in results.values()} == {"succeeded"}


async def test_a_full_handler_does_not_block_other_commands(
    settings: Settings, db: Db, registry: Registry, tally: Tally
) -> None:
    """A command at its own limit is skipped while other commands keep flowing."""
    gate = tally.gate
    async with running(settings, registry, max_jobs=8):
        await db.jobs.insert_many([new_job("solo", {}, "s1"), new_job("solo", {}, "s2")])
        await gate.until_waiting(1)
        await db.jobs.insert_one(new_job("echo", {}, "e1"))
        await wait_for_results(db, ["e1"], timeout_s=20)
        assert await db.jobs.count_documents({"job_id": "s2", "status": "running"}) == 0
        gate.open.set()
        await wait_for_results(db, ["s1", "s2"], timeout_s=20)


async def test_two_reactors_share_the_work_without_running_a_job_twice(
    settings: Settings, db: Db, registry: Registry, tally: Tally
) -> None:
    """Two reactors on one database process every job exactly once between them."""
    ids = [f"pair-{i}" for i in range(200)]
    async with (
        running(settings, registry, worker_name="left"),
        running(settings, registry, worker_name="right"),
    ):
        await db.jobs.insert_many([new_job("record", {}, i) for i in ids])
        results = await wait_for_results(db, ids, timeout_s=60)
    assert all(tally.runs[i] == 1 for i in ids)
    workers = {r["worker"] for r in results.values()}
    assert workers <= {"left", "right"}
    assert all(r["attempt"] == 1 for r in results.values())


async def test_stop_drains_running_jobs(
    settings: Settings, db: Db, registry: Registry, tally: Tally
) -> None:
    """Stopping stops claiming but lets a running job finish and record its result."""
    gate = tally.gate
    async with running(settings, registry) as reactor:
        await db.jobs.insert_one(new_job("gated", {}, "drain"))
        await gate.until_waiting(1)
        reactor.stop()
        await db.jobs.insert_one(new_job("echo", {}, "too-late"))
        gate.open.set()
    result = await db.results.find_one({"job_id": "drain"})
    assert result is not None
    assert result["status"] == "succeeded"
    assert await db.results.find_one({"job_id": "too-late"}) is None
