"""Nothing is lost across restarts, dead owners, lost history and dropped connections."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pymongo.asynchronous.database import AsyncDatabase

from reactor.client import new_job, wait_for_result, wait_for_results
from reactor.config import Settings
from reactor.errors import CancelPending, LeaseLost
from reactor.model import Result, Status
from reactor.queries import Tier
from reactor.registry import Registry
from reactor.store import STATE_COLLECTION, Store
from tests.integration.jobs_lib import Tally
from tests.integration.reactors import running

Db = AsyncDatabase[dict[str, Any]]


async def test_jobs_inserted_while_no_reactor_runs_are_processed_at_start(
    settings: Settings, db: Db, registry: Registry
) -> None:
    """The startup catch-up claims every job that was queued before the reactor came up."""
    await db.jobs.insert_many([new_job("record", {}, f"early-{i}") for i in range(20)])
    async with running(settings, registry):
        results = await wait_for_results(db, [f"early-{i}" for i in range(20)], timeout_s=30)
    assert len(results) == 20


async def test_restart_resumes_from_the_stored_token(
    settings: Settings, db: Db, registry: Registry
) -> None:
    """A restarted reactor resumes its stream from the saved token and misses nothing."""
    async with running(settings, registry):
        await db.jobs.insert_one(new_job("record", {}, "before"))
        await wait_for_result(db, "before", timeout_s=20)
    state = await db[STATE_COLLECTION].find_one({"_id": "jobs_stream"})
    assert state is not None
    assert isinstance(state["resume_token"], dict)
    await db.jobs.insert_many([new_job("record", {}, f"down-{i}") for i in range(5)])
    async with running(settings, registry) as reactor:
        results = await wait_for_results(db, [f"down-{i}" for i in range(5)], timeout_s=30)
        assert reactor.stream is not None
        resumed_from = state["resume_token"]
        assert reactor.stream.token != resumed_from  # it moved on from where it resumed
    assert len(results) == 5


async def test_an_expired_lease_is_claimed_again(
    settings: Settings, db: Db, registry: Registry
) -> None:
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
    async with running(settings, registry) as reactor:
        result = await wait_for_result(db, "orphan", timeout_s=30)
        assert reactor.metrics.lease_expiries._value.get() == 1
    # a reclaim is not charged: attempt 1 ran again, under a newer fence
    assert (result["status"], result["attempt"], result["fence"]) == ("succeeded", 1, 1)


async def test_a_live_lease_is_not_taken(
    settings: Settings, db: Db, registry: Registry, tally: Tally
) -> None:
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
    async with running(settings, registry):
        await db.jobs.insert_one(new_job("record", {}, "marker"))
        await wait_for_result(db, "marker", timeout_s=20)
    assert tally.runs["held"] == 0


async def test_a_stale_owner_cannot_overwrite_a_newer_attempt(settings: Settings, db: Db) -> None:
    """Fencing: after a takeover the old claim's result and status writes are refused."""
    await db.jobs.insert_one(new_job("echo", {}, "fenced"))
    old = Store(db, owner="old", lease_s=30)
    new = Store(db, owner="new", lease_s=30)
    await old.ensure_indexes()
    stale = await old.claim_tier(Tier.DEFAULT)
    assert stale is not None
    await db.jobs.update_one(
        {"job_id": "fenced"}, {"$set": {"lease_expires_at": datetime.now(UTC) - timedelta(1)}}
    )
    fresh = await new.claim_tier(Tier.REPAIR)
    assert fresh is not None
    assert (fresh.fence, fresh.attempt, fresh.reclaimed) == (2, 1, True)
    now = datetime.now(UTC)
    await new.finish(Result(fresh, Status.SUCCEEDED, "new", now, value=1))
    with pytest.raises(LeaseLost):
        await old.finish(Result(stale, Status.FAILED, "old", now))
    result = await db.results.find_one({"job_id": "fenced"})
    assert result is not None
    assert (result["worker"], result["fence"]) == ("new", 2)


async def test_a_stale_result_write_is_refused_even_after_its_renew(
    settings: Settings, db: Db, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A claim that stalled between its renew and its result write cannot replace the result
    of the newer claim that took over meanwhile."""
    await db.jobs.insert_one(new_job("echo", {}, "late"))
    old = Store(db, owner="old", lease_s=30)
    new = Store(db, owner="new", lease_s=30)
    await old.ensure_indexes()
    stale = await old.claim_tier(Tier.DEFAULT)
    assert stale is not None
    await db.jobs.update_one({"job_id": "late"}, {"$set": {"lease_expires_at": datetime.now(UTC)}})
    fresh = await new.claim_tier(Tier.REPAIR)
    assert fresh is not None
    now = datetime.now(UTC)
    await new.finish(Result(fresh, Status.SUCCEEDED, "new", now, value=1))

    async def renewed(job: Any) -> dict[str, Any]:  # the renew passed before the stall
        return {}

    monkeypatch.setattr(old, "renew", renewed)
    with pytest.raises(LeaseLost):
        await old.finish(Result(stale, Status.FAILED, "old", now))
    result = await db.results.find_one({"job_id": "late"})
    assert result is not None
    assert (result["worker"], result["status"]) == ("new", "succeeded")


async def test_a_result_write_repeated_after_a_lost_reply_is_stored(
    settings: Settings, db: Db, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first result write landed but its reply was lost in an outage: writing it again under
    the same claim overwrites it, and the job ends with its result, not as refused."""
    await db.jobs.insert_one(new_job("echo", {}, "echoed"))
    store = Store(db, owner="only", lease_s=30)
    await store.ensure_indexes()
    job = await store.claim_tier(Tier.DEFAULT)
    assert job is not None
    now = datetime.now(UTC)
    lost_reply = Result(job, Status.SUCCEEDED, "only", now, value=1)
    real_run = store._run

    async def outage(name: str, call: Any) -> Any:
        if name == "finish":  # the result write landed; the outage took what came after
            call.close()
            raise ConnectionResetError("the reply to the result write never came")
        return await real_run(name, call)

    monkeypatch.setattr(store, "_run", outage)
    with pytest.raises(ConnectionResetError):
        await store.finish(lost_reply)
    monkeypatch.setattr(store, "_run", real_run)
    await store.finish(Result(job, Status.SUCCEEDED, "only", now, value=2))
    doc = await db.jobs.find_one({"job_id": "echoed"})
    result = await db.results.find_one({"job_id": "echoed"})
    assert doc is not None
    assert result is not None
    assert (doc["status"], result["status"], result["result"]) == ("succeeded", "succeeded", 2)


async def test_no_result_is_kept_for_a_job_the_database_no_longer_holds(
    settings: Settings, db: Db, monkeypatch: pytest.MonkeyPatch
) -> None:
    """MongoDB came back empty while the result write waited: the write lands in a database
    without the job, the fenced finish finds nothing, and the stray result is deleted."""
    await db.jobs.insert_one(new_job("echo", {}, "vanished"))
    store = Store(db, owner="only", lease_s=30)
    await store.ensure_indexes()
    job = await store.claim_tier(Tier.DEFAULT)
    assert job is not None
    await db.jobs.delete_many({})  # what a restart with no data leaves
    with pytest.raises(LeaseLost):
        await store.finish(Result(job, Status.SUCCEEDED, "only", datetime.now(UTC)), renew=False)
    assert await db.results.count_documents({"job_id": "vanished"}) == 0


async def test_heartbeats_keep_a_long_job_leased(
    settings: Settings, db: Db, registry: Registry
) -> None:
    """A job running longer than its lease is renewed, not re-run."""
    async with running(settings, registry, lease_s=1.0, sweep_s=0.2):
        await db.jobs.insert_one({"job_id": "long", "command": "sleep", "args": {"seconds": 2.5}})
        result = await wait_for_result(db, "long", timeout_s=30)
    assert (result["status"], result["attempt"]) == ("succeeded", 1)


async def test_lost_history_falls_back_to_the_catch_up_scan(
    settings: Settings, db: Db, double: Any, registry: Registry
) -> None:
    """When the stored token's history is gone (code 286) queued jobs are still processed."""
    async with running(settings, registry):
        await db.jobs.insert_one(new_job("record", {}, "first"))
        await wait_for_result(db, "first", timeout_s=20)
    await db.jobs.insert_many([new_job("record", {}, f"gap-{i}") for i in range(3)])
    double.forget_history()
    async with running(settings, registry):
        results = await wait_for_results(db, [f"gap-{i}" for i in range(3)], timeout_s=30)
    assert len(results) == 3
    state = await db[STATE_COLLECTION].find_one({"_id": "jobs_stream"})
    assert state is not None


async def test_dropped_connections_do_not_lose_jobs(
    settings: Settings, db: Db, double: Any, registry: Registry
) -> None:
    """After every connection drops, the stream resumes and new jobs are processed."""
    async with running(settings, registry):
        await db.jobs.insert_one(new_job("record", {}, "pre"))
        await wait_for_result(db, "pre", timeout_s=20)
        double.drop_connections()
        await db.jobs.insert_many([new_job("record", {}, f"post-{i}") for i in range(3)])
        results = await wait_for_results(db, [f"post-{i}" for i in range(3)], timeout_s=30)
    assert len(results) == 3


async def test_failed_commands_are_survived(
    settings: Settings, db: Db, double: Any, registry: Registry
) -> None:
    """Injected failures on the stream's getMore are retried and the job still runs."""
    async with running(settings, registry):
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
    settings: Settings, db: Db, double: Any, registry: Registry, tally: Tally
) -> None:
    """NotWritablePrimary with RetryableWriteError on a claim is retried; the job runs once."""
    async with running(settings, registry):
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
    assert tally.runs["failover"] == 1


async def test_a_result_that_cannot_be_written_is_kept_until_mongodb_takes_it(
    settings: Settings, db: Db, double: Any, registry: Registry, tally: Tally
) -> None:
    """When MongoDB refuses the finishing writes for a while, the outcome is kept and written
    later; the handler does not run again and the service keeps serving."""
    gate = tally.gate
    async with running(settings, registry, lease_s=1.0, sweep_s=0.2) as reactor:
        await db.jobs.insert_one(new_job("gated", {}, "unrecorded"))
        await gate.until_waiting(1)
        double.fail_next(4, code=11600, commands={"update"}, message="down")
        gate.open.set()  # the next updates are the result and status writes
        result = await wait_for_result(db, "unrecorded", timeout_s=30)
        await db.jobs.insert_one(new_job("record", {}, "still-serving"))
        await wait_for_result(db, "still-serving", timeout_s=30)
        assert reactor.metrics.record_retries._value.get() >= 1
    assert (result["status"], result["attempt"], result["fence"]) == ("succeeded", 1, 1)
    assert tally.runs["unrecorded"] == 1


async def test_a_failed_gridfs_upload_is_written_again(
    settings: Settings, db: Db, double: Any, registry: Registry, tally: Tally
) -> None:
    """A large result whose GridFS upload fails once is uploaded again; the handler ran once."""
    gate = tally.gate
    async with running(settings, registry, lease_s=1.0, sweep_s=0.2, result_inline_max_bytes=4096):
        await db.jobs.insert_one(new_job("big_after_gate", {"size": 20_000}, "big-fail"))
        await gate.until_waiting(1)
        double.fail_next(1, code=11600, commands={"insert"}, message="interrupted")
        gate.open.set()  # the next insert is the GridFS upload of the result
        result = await wait_for_result(db, "big-fail", timeout_s=30)
    assert (result["status"], result["attempt"]) == ("succeeded", 1)
    assert tally.runs["big-fail"] == 1
    assert result["result_ref"]["bytes"] > 20_000


@pytest.mark.parametrize(
    ("request_doc", "via"),
    [({"status": "cancelled"}, "status"), ({"cancel_requested": True}, "cancel_requested")],
)
async def test_a_hand_back_does_not_undo_a_cancel_asked_meanwhile(
    settings: Settings, db: Db, request_doc: dict[str, Any], via: str
) -> None:
    """A job cancelled while its owner was cut off is not queued again by the hand-back: the
    store says a cancellation is pending, which the recorder then records."""
    await db.jobs.insert_one(new_job("echo", {}, "cut-off"))
    store = Store(db, owner="owner", lease_s=30)
    await store.ensure_indexes()
    job = await store.claim_tier(Tier.DEFAULT)
    assert job is not None
    await db.jobs.update_one({"job_id": "cut-off"}, {"$set": request_doc})
    with pytest.raises(CancelPending) as caught:
        await store.hand_back(job)
    assert caught.value.via == via
    doc = await db.jobs.find_one({"job_id": "cut-off"})
    assert doc is not None
    assert doc["status"] == request_doc.get("status", "running")


def _dead_owners_jobs(expired: datetime, names: list[str]) -> list[dict[str, Any]]:
    return [
        {"job_id": name, "command": "loop_nap", "args": {"seconds": 3}, "status": "running",
         "lease_owner": "dead-worker", "lease_expires_at": expired, "attempt": 1, "fence": 1}
        for name in names
    ]  # fmt: skip


def _overlapped(results: dict[str, Any]) -> bool:
    spans = [(r["started_at"], r["finished_at"]) for r in results.values()]
    return max(start for start, _ in spans) < min(end for _, end in spans)


@pytest.mark.parametrize("outage", [False, True], ids=["after-a-death", "after-an-outage"])
async def test_reclaims_run_alone_unless_an_outage_explains_their_expired_lease(
    settings: Settings, db: Db, outage: bool, registry: Registry
) -> None:
    """Loop jobs whose owner's lease simply ran out run one at a time (their owner may have died
    of one of them); when the lease ran out while this reactor saw MongoDB unreachable, the
    outage explains it, and they run side by side."""
    names = ["orphan-a", "orphan-b"]
    async with running(settings, registry) as reactor:
        if outage:
            reactor.connectivity.went_away()
            reactor.connectivity.came_back()
        await db.jobs.insert_many(
            _dead_owners_jobs(datetime.now(UTC) - timedelta(seconds=1), names)
        )
        results = await wait_for_results(db, names, timeout_s=60)
    assert [r["status"] for r in results.values()] == ["succeeded"] * 2
    assert _overlapped(results) is outage
