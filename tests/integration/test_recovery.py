"""Nothing is lost across restarts, dead owners, lost history and dropped connections."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import jobs_lib
import pytest
from conftest import running
from pymongo.asynchronous.database import AsyncDatabase

from reactor.client import new_job, wait_for_result, wait_for_results
from reactor.config import Settings
from reactor.errors import LeaseLost
from reactor.model import Result, Status
from reactor.store import STATE_COLLECTION, Store

Db = AsyncDatabase[dict[str, Any]]


async def test_jobs_inserted_while_no_reactor_runs_are_processed_at_start(
    settings: Settings, db: Db
) -> None:
    """The startup catch-up claims every job that was queued before the reactor came up."""
    await db.jobs.insert_many([new_job("record", {}, f"early-{i}") for i in range(20)])
    async with running(settings, jobs_lib.registry()):
        results = await wait_for_results(db, [f"early-{i}" for i in range(20)], timeout_s=30)
    assert len(results) == 20


async def test_restart_resumes_from_the_stored_token(settings: Settings, db: Db) -> None:
    """A restarted reactor resumes its stream from the saved token and misses nothing."""
    async with running(settings, jobs_lib.registry()):
        await db.jobs.insert_one(new_job("record", {}, "before"))
        await wait_for_result(db, "before", timeout_s=20)
    state = await db[STATE_COLLECTION].find_one({"_id": "jobs_stream"})
    assert state is not None
    assert isinstance(state["resume_token"], dict)
    await db.jobs.insert_many([new_job("record", {}, f"down-{i}") for i in range(5)])
    async with running(settings, jobs_lib.registry()) as reactor:
        results = await wait_for_results(db, [f"down-{i}" for i in range(5)], timeout_s=30)
        assert reactor.stream is not None
        resumed_from = state["resume_token"]
        assert reactor.stream.token != resumed_from  # it moved on from where it resumed
    assert len(results) == 5


async def test_an_expired_lease_is_claimed_again(settings: Settings, db: Db) -> None:
    """A job left running by a dead owner is re-run once its lease has expired."""
    past = datetime.now(UTC) - timedelta(seconds=5)
    await db.jobs.insert_one(
        {
            "job_id": "orphan",
            "command": "record",
            "status": "running",
            "lease_owner": "dead-worker",
            "lease_expires_at": past,
            "attempt": 1,
        }
    )
    async with running(settings, jobs_lib.registry()) as reactor:
        result = await wait_for_result(db, "orphan", timeout_s=30)
        assert reactor.metrics.lease_expiries._value.get() == 1
    assert (result["status"], result["attempt"]) == ("succeeded", 2)


async def test_a_live_lease_is_not_taken(settings: Settings, db: Db) -> None:
    """A job another owner holds with an unexpired lease is left alone."""
    future = datetime.now(UTC) + timedelta(minutes=5)
    await db.jobs.insert_one(
        {
            "job_id": "held",
            "command": "record",
            "status": "running",
            "lease_owner": "alive",
            "lease_expires_at": future,
            "attempt": 1,
        }
    )
    async with running(settings, jobs_lib.registry()):
        await db.jobs.insert_one(new_job("record", {}, "marker"))
        await wait_for_result(db, "marker", timeout_s=20)
    assert jobs_lib.RUNS["held"] == 0


async def test_a_stale_owner_cannot_overwrite_a_newer_attempt(settings: Settings, db: Db) -> None:
    """Fencing: after a takeover the old attempt's result and status writes are refused."""
    await db.jobs.insert_one(new_job("echo", {}, "fenced"))
    old = Store(db, owner="old", lease_s=30)
    new = Store(db, owner="new", lease_s=30)
    await old.ensure_indexes()
    stale = await old.claim_next()
    assert stale is not None
    await db.jobs.update_one(
        {"job_id": "fenced"}, {"$set": {"lease_expires_at": datetime.now(UTC) - timedelta(1)}}
    )
    fresh = await new.claim_next()
    assert fresh is not None
    assert fresh.attempt == 2
    assert fresh.reclaimed
    now = datetime.now(UTC)
    await new.finish(fresh, Result("fenced", "echo", Status.SUCCEEDED, 2, "new", now, now, 1))
    with pytest.raises(LeaseLost):
        await old.finish(stale, Result("fenced", "echo", Status.FAILED, 1, "old", now, now))
    result = await db.results.find_one({"job_id": "fenced"})
    assert result is not None
    assert (result["worker"], result["attempt"]) == ("new", 2)


async def test_heartbeats_keep_a_long_job_leased(settings: Settings, db: Db) -> None:
    """A job running longer than its lease is renewed, not re-run."""
    async with running(settings, jobs_lib.registry(), lease_s=1.0, sweep_s=0.2):
        await db.jobs.insert_one({"job_id": "long", "command": "sleep", "args": {"seconds": 2.5}})
        result = await wait_for_result(db, "long", timeout_s=30)
    assert (result["status"], result["attempt"]) == ("succeeded", 1)


async def test_lost_history_falls_back_to_the_catch_up_scan(
    settings: Settings, db: Db, double: Any
) -> None:
    """When the stored token's history is gone (code 286) queued jobs are still processed."""
    async with running(settings, jobs_lib.registry()):
        await db.jobs.insert_one(new_job("record", {}, "first"))
        await wait_for_result(db, "first", timeout_s=20)
    await db.jobs.insert_many([new_job("record", {}, f"gap-{i}") for i in range(3)])
    double.forget_history()
    async with running(settings, jobs_lib.registry()):
        results = await wait_for_results(db, [f"gap-{i}" for i in range(3)], timeout_s=30)
    assert len(results) == 3
    state = await db[STATE_COLLECTION].find_one({"_id": "jobs_stream"})
    assert state is not None


async def test_dropped_connections_do_not_lose_jobs(
    settings: Settings, db: Db, double: Any
) -> None:
    """After every connection drops, the stream resumes and new jobs are processed."""
    async with running(settings, jobs_lib.registry()):
        await db.jobs.insert_one(new_job("record", {}, "pre"))
        await wait_for_result(db, "pre", timeout_s=20)
        double.drop_connections()
        await db.jobs.insert_many([new_job("record", {}, f"post-{i}") for i in range(3)])
        results = await wait_for_results(db, [f"post-{i}" for i in range(3)], timeout_s=30)
    assert len(results) == 3


async def test_failed_commands_are_survived(settings: Settings, db: Db, double: Any) -> None:
    """Injected failures on the stream's getMore are retried and the job still runs."""
    async with running(settings, jobs_lib.registry()):
        double.fail_next(
            2,
            code=91,
            labels=["ResumableChangeStreamError"],
            commands={"getMore"},
            message="shutting down",
        )
        await db.jobs.insert_one(new_job("record", {}, "survivor"))
        result = await wait_for_result(db, "survivor", timeout_s=30)
    assert result["status"] == "succeeded"


async def test_a_failover_during_a_claim_is_retried_by_the_driver(
    settings: Settings, db: Db, double: Any
) -> None:
    """NotWritablePrimary with RetryableWriteError on a claim is retried; the job runs once."""
    async with running(settings, jobs_lib.registry()):
        double.fail_next(
            1,
            code=10107,
            labels=["RetryableWriteError"],
            commands={"findAndModify"},
            message="not primary",
        )
        await db.jobs.insert_one(new_job("record", {}, "failover"))
        result = await wait_for_result(db, "failover", timeout_s=30)
    assert (result["status"], result["attempt"]) == ("succeeded", 1)
    assert jobs_lib.RUNS["failover"] == 1


async def test_a_result_that_cannot_be_written_is_rerun_after_its_lease(
    settings: Settings, db: Db, double: Any
) -> None:
    """When MongoDB refuses the finishing writes, the service survives and the lease re-runs it."""
    async with running(settings, jobs_lib.registry(), lease_s=1.0, sweep_s=0.2) as reactor:
        await db.jobs.insert_one(new_job("record", {}, "unrecorded"))
        async with await db.jobs.watch([{"$match": {"operationType": "update"}}]) as stream:
            double.fail_next(2, code=11600, commands={"update"}, message="interrupted")
            await stream.next()  # the claim
        result = await wait_for_result(db, "unrecorded", timeout_s=30)
        await db.jobs.insert_one(new_job("record", {}, "still-serving"))
        await wait_for_result(db, "still-serving", timeout_s=30)
        assert reactor.metrics.lease_expiries._value.get() >= 1
    # the failures may also hit a resume-token save, so one or two attempts go unrecorded
    assert result["status"] == "succeeded"
    assert result["attempt"] >= 2
    assert jobs_lib.RUNS["unrecorded"] == result["attempt"]


async def test_a_failed_gridfs_upload_leaves_the_job_to_its_lease(
    settings: Settings, db: Db, double: Any
) -> None:
    """A large result whose GridFS upload fails is re-run later; the service keeps serving."""
    gate = jobs_lib.GATE["current"] = jobs_lib.Gate()
    async with running(
        settings, jobs_lib.registry(), lease_s=1.0, sweep_s=0.2, result_inline_max_bytes=4096
    ):
        await db.jobs.insert_one(new_job("big_after_gate", {"size": 20_000}, "big-fail"))
        await gate.until_waiting(1)
        double.fail_next(1, code=11600, commands={"insert"}, message="interrupted")
        gate.open.set()  # the next insert is the GridFS upload of the result
        result = await wait_for_result(db, "big-fail", timeout_s=30)
    assert result["status"] == "succeeded"
    assert result["attempt"] == 2
    assert result["result_ref"]["bytes"] > 20_000
