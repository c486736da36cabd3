"""A job document becomes exactly one result document, on the double and on a replica set."""

from __future__ import annotations

from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from reactor.client import new_job, wait_for_result, wait_for_results
from reactor.config import Settings
from reactor.registry import Registry
from reactor.store import load_large_result
from tests.integration.jobs_lib import Tally
from tests.integration.reactors import running

Db = AsyncDatabase[dict[str, Any]]


async def test_an_inserted_job_gets_its_result(
    settings: Settings, db: Db, registry: Registry
) -> None:
    """A seed-format job inserted with plain pymongo ends as one succeeded result."""
    async with running(settings, registry):
        await db.jobs.insert_one({"job_id": "a1", "command": "echo", "args": {"x": 1}})
        result = await wait_for_result(db, "a1", timeout_s=20)
    assert result["status"] == "succeeded"
    assert result["result"] == {"x": 1}
    assert result["attempt"] == 1
    assert result["worker"] == settings.worker_name
    assert result["handler"] == "reactor_handlers.basic:echo"
    assert result["duration_ms"] >= 0
    job = await db.jobs.find_one({"job_id": "a1"})
    assert job is not None
    assert job["status"] == "succeeded"
    assert "lease_owner" not in job
    assert job["created_at"] <= job["started_at"] <= job["finished_at"]


async def test_many_jobs_give_exactly_one_result_each(
    settings: Settings, db: Db, registry: Registry, tally: Tally
) -> None:
    """Hundreds of inserts give one result per job and no job runs twice."""
    jobs = [new_job("record", {}, f"many-{i}") for i in range(300)]
    async with running(settings, registry, max_jobs=32):
        await db.jobs.insert_many(jobs)
        results = await wait_for_results(db, [j["job_id"] for j in jobs], timeout_s=60)
    assert len(results) == 300
    assert await db.results.count_documents({}) == 300
    assert all(tally.runs[j["job_id"]] == 1 for j in jobs)
    assert {r["status"] for r in results.values()} == {"succeeded"}


async def test_queued_status_and_requeue_are_claimed(
    settings: Settings, db: Db, registry: Registry, tally: Tally
) -> None:
    """A job inserted as queued runs, and putting a finished job back to queued starts run 2."""
    async with running(settings, registry):
        await db.jobs.insert_one({"job_id": "q1", "command": "record", "status": "queued"})
        first = await wait_for_result(db, "q1", timeout_s=20)
        async with await db.results.watch([{"$match": {"operationType": "update"}}]) as stream:
            await db.jobs.update_one({"job_id": "q1"}, {"$set": {"status": "queued"}})
            await stream.next()
    second = await db.results.find_one({"job_id": "q1"})
    assert second is not None
    assert (first["run"], first["attempt"]) == (1, 1)
    assert (second["run"], second["attempt"]) == (2, 1)
    assert [entry["run"] for entry in second["history"]] == [1]
    assert tally.runs["q1"] == 2


async def test_jobs_in_other_states_are_left_alone(
    settings: Settings, db: Db, registry: Registry, tally: Tally
) -> None:
    """Finished jobs are not claimed; a job inserted as cancelled gets a cancelled result unrun."""
    await db.jobs.insert_many(
        [
            {"job_id": "done", "command": "record", "status": "succeeded"},
            {"job_id": "cancelled", "command": "record", "status": "cancelled"},
        ]
    )
    async with running(settings, registry):
        await db.jobs.insert_one({"job_id": "marker", "command": "record"})
        results = await wait_for_results(db, ["marker", "cancelled"], timeout_s=20)
    assert results["cancelled"]["status"] == "cancelled"
    assert results["cancelled"]["cancelled_via"] == "status"
    assert await db.results.count_documents({}) == 2
    assert tally.runs["done"] == tally.runs["cancelled"] == 0


async def test_own_writes_do_not_wake_the_reactor(
    settings: Settings, db: Db, registry: Registry
) -> None:
    """Claims, heartbeats and final statuses produce no stream events for the reactor."""
    async with running(settings, registry) as reactor:
        await db.jobs.insert_many([new_job("record", {}, f"w{i}") for i in range(5)])
        await wait_for_results(db, [f"w{i}" for i in range(5)], timeout_s=20)
        assert reactor.stream is not None
        events = reactor.stream.events
    assert events == 5


async def test_retry_runs_the_job_again(settings: Settings, db: Db, registry: Registry) -> None:
    """A handler raising Retry is put back to queued and succeeds on its next attempt."""
    async with running(settings, registry):
        await db.jobs.insert_one({"job_id": "r1", "command": "retry_once", "args": {}})
        result = await wait_for_result(db, "r1", timeout_s=20)
    assert (result["status"], result["result"], result["attempt"]) == (
        "succeeded",
        {"attempt": 2},
        2,
    )


async def test_large_results_go_to_gridfs(settings: Settings, db: Db, registry: Registry) -> None:
    """A result over the inline limit is stored in GridFS behind a reference."""
    async with running(settings, registry, result_inline_max_bytes=4096):
        await db.jobs.insert_one({"job_id": "big", "command": "big", "args": {"size": 50_000}})
        result = await wait_for_result(db, "big", timeout_s=20)
    assert result["status"] == "succeeded"
    assert result["result"] is None
    assert result["result_ref"]["bytes"] > 50_000
    assert await load_large_result(db, result["result_ref"]) == "x" * 50_000


async def test_thread_handlers_read_files_in_the_job_directory(
    settings: Settings, db: Db, registry: Registry
) -> None:
    """A blocking handler gets its path argument resolved inside the job's directory."""
    job_dir = settings.jobs_root / "t1"
    job_dir.mkdir(parents=True)
    (job_dir / "note.txt").write_text("hello from the volume")
    async with running(settings, registry):
        await db.jobs.insert_one(
            {"job_id": "t1", "command": "read_text", "args": {"path": "note.txt"}}
        )
        result = await wait_for_result(db, "t1", timeout_s=20)
    assert result["result"] == "hello from the volume"


async def test_cpu_handlers_run_in_the_pool(settings: Settings, db: Db, registry: Registry) -> None:
    """A process handler runs in a worker process and its value comes back."""
    import os

    async with running(settings, registry):
        await db.jobs.insert_one({"job_id": "c1", "command": "cpu_square", "args": {"n": 12}})
        result = await wait_for_result(db, "c1", timeout_s=60)
    assert result["result"]["square"] == 144
    assert result["result"]["pid"] != os.getpid()
