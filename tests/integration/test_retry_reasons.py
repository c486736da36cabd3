"""Every ``Retry("reason")`` is kept: in the job's and the result's ``errors``, and in the log."""

from __future__ import annotations

from typing import Any

from pymongo.asynchronous.database import AsyncDatabase
from structlog.testing import capture_logs

from reactor.client import wait_for_result
from reactor.config import Settings
from reactor.errors import Retry
from reactor.handler import JobContext, handler
from reactor.registry import Registry, build_handler
from tests.integration.reactors import running

Db = AsyncDatabase[dict[str, Any]]


async def flaky(ctx: JobContext, failures: int) -> dict[str, int]:
    """Ask for another attempt ``failures`` times, giving the attempt in the reason."""
    if ctx.attempt <= failures:
        raise Retry(f"scanner busy on attempt {ctx.attempt}", delay_s=0.05)
    return {"attempt": ctx.attempt}


@handler(max_attempts=3)
async def never_ready(ctx: JobContext) -> None:
    """Ask for another attempt every time."""
    raise Retry(f"not ready (attempt {ctx.attempt})", delay_s=0.05)


def registry() -> Registry:
    return Registry([build_handler("flaky", flaky), build_handler("never_ready", never_ready)])


def entries(errors: list[dict[str, Any]]) -> list[tuple[int, str, str]]:
    for entry in errors:
        assert entry["at"] is not None
    return [(e["attempt"], e["type"], e["message"]) for e in errors]


async def test_a_job_that_succeeds_after_two_retries_shows_both_reasons(
    settings: Settings, db: Db
) -> None:
    """Two Retry reasons land in the succeeded result's errors and in the job's, in order."""
    async with running(settings, registry()):
        await db.jobs.insert_one({"job_id": "flaky", "command": "flaky", "args": {"failures": 2}})
        result = await wait_for_result(db, "flaky", timeout_s=30)
        job = await db.jobs.find_one({"job_id": "flaky"})
    assert job is not None
    assert (result["status"], result["attempt"]) == ("succeeded", 3)
    expected = [
        (1, "Retry", "scanner busy on attempt 1"),
        (2, "Retry", "scanner busy on attempt 2"),
    ]
    assert entries(result["errors"]) == expected
    assert entries(job["errors"]) == expected


async def test_a_job_that_gives_up_keeps_every_reason_before_gave_up(
    settings: Settings, db: Db
) -> None:
    """Retry on every attempt: the earlier reasons precede the final GaveUp in errors."""
    async with running(settings, registry()):
        await db.jobs.insert_one({"job_id": "never", "command": "never_ready", "args": {}})
        result = await wait_for_result(db, "never", timeout_s=30)
    assert result["status"] == "failed"
    assert result["error"]["type"] == "GaveUp"
    assert [e[:2] for e in entries(result["errors"])] == [
        (1, "Retry"),
        (2, "Retry"),
        (3, "GaveUp"),
    ]
    assert result["errors"][1]["message"] == "not ready (attempt 2)"


async def test_the_retry_log_line_carries_the_reason(settings: Settings, db: Db) -> None:
    """job_retry_queued names the Retry and its reason, like a failure line names its error."""
    with capture_logs() as logs:
        async with running(settings, registry()):
            await db.jobs.insert_one(
                {"job_id": "logged", "command": "flaky", "args": {"failures": 1}}
            )
            await wait_for_result(db, "logged", timeout_s=30)
    [line] = [entry for entry in logs if entry["event"] == "job_retry_queued"]
    assert line["error_type"] == "Retry"
    assert line["error"] == "scanner busy on attempt 1"
