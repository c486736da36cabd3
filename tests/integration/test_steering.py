"""Users steer jobs through the document: cancel, re-run, delays, priorities, retries, progress."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import anyio
import pytest
from pymongo.asynchronous.database import AsyncDatabase
from structlog.contextvars import merge_contextvars
from structlog.testing import capture_logs

from reactor.client import new_job, wait_for_result, wait_for_results
from reactor.config import Settings
from reactor.registry import Registry
from tests.integration.jobs_lib import Tally
from tests.integration.lifecycle_lib import run_done, wait_for_doc
from tests.integration.reactors import running

Db = AsyncDatabase[dict[str, Any]]

CANCEL_WAYS = {
    "cancel_requested": {"$set": {"cancel_requested": True}},
    "status": {"$set": {"status": "cancelled"}},
}
LONG_JOBS = {
    "loop": ("loop_nap", {"seconds": 60}),
    "thread": ("thread_nap", {"seconds": 30}),
    "process": ("cpu_nap", {"seconds": 60}),
}


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


@pytest.mark.parametrize("kind", sorted(LONG_JOBS))
@pytest.mark.parametrize("way", sorted(CANCEL_WAYS))
async def test_a_running_job_is_cancelled_within_two_seconds(
    settings: Settings, db: Db, kind: str, way: str, registry: Registry
) -> None:
    """A cancel asked through the document stops a running loop, thread or process handler;
    the job ends cancelled with one cancelled result saying when and how."""
    command, args = LONG_JOBS[kind]
    async with running(settings, registry):
        await db.jobs.insert_one(new_job(command, args, "victim"))
        await wait_for_doc(db.jobs, "victim", lambda d: d.get("status") == "running", timeout_s=30)
        pid_file = settings.jobs_root / "victim" / "pid"
        if kind == "process":
            with anyio.fail_after(30):
                while not pid_file.exists():  # noqa: ASYNC110 (written by another process)
                    await anyio.sleep(0.05)
        asked = time.monotonic()
        await db.jobs.update_one({"job_id": "victim"}, CANCEL_WAYS[way])
        result = await wait_for_result(db, "victim", timeout_s=30)
        took_s = time.monotonic() - asked
        job = await wait_for_doc(db.jobs, "victim", lambda d: "cancelled_at" in d, timeout_s=10)
    assert took_s < 2.0
    assert (result["status"], result["cancelled_via"]) == ("cancelled", way)
    assert isinstance(result["cancelled_at"], datetime)
    assert (job["status"], job["cancelled_via"]) == ("cancelled", way)
    assert "lease_owner" not in job
    assert await db.results.count_documents({"job_id": "victim"}) == 1
    if kind == "process":
        assert _gone(int(pid_file.read_text()))


@pytest.mark.parametrize("way", sorted(CANCEL_WAYS))
async def test_a_queued_job_that_is_cancelled_never_starts(
    settings: Settings, db: Db, way: str, registry: Registry, tally: Tally
) -> None:
    """A job cancelled while it waits gets a cancelled result and its handler never runs."""
    gate = tally.gate
    async with running(settings, registry, max_jobs=1):
        await db.jobs.insert_one(new_job("gated", {}, "blocker"))
        await gate.until_waiting(1)
        await db.jobs.insert_one(new_job("record", {}, "waiting"))
        await db.jobs.update_one({"job_id": "waiting"}, CANCEL_WAYS[way])
        result = await wait_for_result(db, "waiting", timeout_s=10)
        gate.open.set()
        await wait_for_result(db, "blocker", timeout_s=10)
    assert (result["status"], result["cancelled_via"]) == ("cancelled", way)
    assert tally.runs["waiting"] == 0


async def test_a_job_cancelled_before_it_started_does_not_look_started(
    settings: Settings, db: Db, registry: Registry, tally: Tally
) -> None:
    """A queued job cancelled before any attempt started logs no job_started, and neither its
    job nor its result carries started_at, a duration or an attempt; the cancel request is
    logged with its job_id and command, like every job line."""
    with capture_logs([merge_contextvars]) as logs:
        async with running(settings, registry, max_jobs=1):
            await db.jobs.insert_one(new_job("gated", {}, "blocker"))
            await tally.gate.until_waiting(1)
            await db.jobs.insert_one(new_job("record", {}, "waiting"))
            await db.jobs.update_one({"job_id": "waiting"}, {"$set": {"cancel_requested": True}})
            result = await wait_for_result(db, "waiting", timeout_s=10)
            job = await wait_for_doc(
                db.jobs, "waiting", lambda d: "cancelled_at" in d, timeout_s=10
            )
            await db.jobs.update_one({"job_id": "blocker"}, {"$set": {"cancel_requested": True}})
            await wait_for_result(db, "blocker", timeout_s=10)
            tally.gate.open.set()
    assert (result["status"], result["attempt"], result["started_at"]) == ("cancelled", 0, None)
    assert result["duration_ms"] is None
    assert (job["status"], job["attempt"], "started_at" in job) == ("cancelled", 0, False)
    started = [e["job_id"] for e in logs if e["event"] == "job_started"]
    assert started == ["blocker"]
    asked = [e for e in logs if e["event"] == "job_cancel_requested"]
    assert [(e["job_id"], e["command"], e["via"]) for e in asked] == [
        ("blocker", "gated", "cancel_requested")
    ]


async def test_a_cancelled_job_is_not_run_after_a_restart(
    settings: Settings, db: Db, registry: Registry, tally: Tally
) -> None:
    """A cancel requested while no reactor runs is honoured at startup, without running it."""
    await db.jobs.insert_one({**new_job("record", {}, "asleep"), "cancel_requested": True})
    async with running(settings, registry):
        result = await wait_for_result(db, "asleep", timeout_s=20)
    assert result["status"] == "cancelled"
    assert tally.runs["asleep"] == 0


async def test_five_reruns_give_five_results_with_history(
    settings: Settings, db: Db, registry: Registry
) -> None:
    """Setting a finished job back to queued starts a new run with a fresh attempt budget."""
    async with running(settings, registry):
        await db.jobs.insert_one(new_job("explode", {"message": "always"}, "again"))
        await wait_for_doc(db.results, "again", run_done(1), timeout_s=20)
        for run in range(2, 7):
            await db.jobs.update_one({"job_id": "again"}, {"$set": {"status": "queued"}})
            await wait_for_doc(db.results, "again", run_done(run), timeout_s=20)
    result = await db.results.find_one({"job_id": "again"})
    assert result is not None
    assert (result["run"], result["attempt"], result["error"]["type"]) == (6, 1, "RuntimeError")
    assert [entry["run"] for entry in result["history"]] == [1, 2, 3, 4, 5]
    assert {entry["error_type"] for entry in result["history"]} == {"RuntimeError"}
    assert "result" not in result


async def test_a_rerun_leaves_no_stale_result_or_error(
    settings: Settings, db: Db, registry: Registry
) -> None:
    """A failed run followed by a succeeded one keeps only the new run's value."""
    async with running(settings, registry):
        await db.jobs.insert_one(new_job("retry_once", {}, "flip"))
        first = await wait_for_doc(db.results, "flip", run_done(1), timeout_s=20)
        await db.jobs.update_one({"job_id": "flip"}, {"$set": {"status": "queued"}})
        second = await wait_for_doc(db.results, "flip", run_done(2), timeout_s=20)
    assert first["status"] == "succeeded"
    assert second["status"] == "succeeded"
    assert second["history"][0]["status"] == "succeeded"
    assert "error" not in second


async def test_run_at_holds_a_job_until_its_time(
    settings: Settings, db: Db, registry: Registry
) -> None:
    """A job with run_at starts no sooner than that, and within a second after it."""
    async with running(settings, registry):
        run_at = datetime.now(UTC) + timedelta(seconds=2)
        await db.jobs.insert_one({**new_job("record", {}, "later"), "run_at": run_at})
        result = await wait_for_result(db, "later", timeout_s=20)
    late_s = (result["started_at"].replace(tzinfo=UTC) - run_at).total_seconds()
    assert 0 <= late_s + 0.001 < 1.0  # BSON dates keep milliseconds


async def test_priorities_run_highest_first(
    settings: Settings, db: Db, registry: Registry, tally: Tally
) -> None:
    """With one slot, queued jobs of priorities 0, 5, 1, 9, 3 run as 9, 5, 3, 1, 0."""
    gate = tally.gate
    async with running(settings, registry, max_jobs=1):
        await db.jobs.insert_one(new_job("gated", {}, "blocker"))
        await gate.until_waiting(1)
        priorities = [0, 5, 1, 9, 3]
        await db.jobs.insert_many(
            [{**new_job("ordered", {}, f"p{p}"), "priority": p} for p in priorities]
        )
        await db.jobs.insert_one(new_job("ordered", {}, "p-none"))  # no priority: counts as 0
        gate.open.set()
        await wait_for_results(db, [f"p{p}" for p in priorities] + ["p-none"], timeout_s=30)
    assert tally.order == ["p9", "p5", "p3", "p1", "p0", "p-none"]


async def test_retry_with_a_delay_waits_that_long(
    settings: Settings, db: Db, registry: Registry, tally: Tally
) -> None:
    """Retry(delay_s=2) runs the next attempt no sooner than two seconds later."""
    async with running(settings, registry):
        await db.jobs.insert_one(new_job("retry_later", {"delay_s": 2}, "patient"))
        result = await wait_for_result(db, "patient", timeout_s=30)
    first, second = tally.starts["patient"]
    assert second - first >= 2.0
    assert (result["status"], result["attempt"]) == ("succeeded", 2)


async def test_an_exhausted_job_fails_with_every_attempts_error(
    settings: Settings, db: Db, registry: Registry
) -> None:
    """A worker crash is retried; when attempts run out the failed result lists each error."""
    async with running(settings, registry, max_attempts=3, retry_backoff_s=0.1):
        await db.jobs.insert_one(new_job("cpu_exit", {"code": 3}, "dead"))
        result = await wait_for_result(db, "dead", timeout_s=60)
    assert (result["status"], result["attempt"]) == ("failed", 3)
    assert [e["attempt"] for e in result["errors"]] == [1, 2, 3]
    assert {e["type"] for e in result["errors"]} == {"WorkerCrashed"}


async def test_progress_of_a_process_handler_shows_on_the_job(
    settings: Settings, db: Db, registry: Registry
) -> None:
    """ctx.progress in a CPU handler reaches the job document while the job runs."""
    async with running(settings, registry):
        await db.jobs.insert_one(new_job("cpu_steps", {"steps": 4, "step_s": 0.8}, "steps"))
        seen = await wait_for_doc(
            db.jobs,
            "steps",
            lambda d: d.get("status") == "running" and bool(d.get("progress")),
            timeout_s=30,
        )
        await wait_for_result(db, "steps", timeout_s=30)
    progress = seen["progress"]
    assert 0 < progress["fraction"] < 1
    assert progress["message"].startswith("step ")
    assert isinstance(progress["updated_at"], datetime)
