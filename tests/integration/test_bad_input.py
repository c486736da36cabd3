"""Malformed jobs end as failed results that say what was wrong, and the service keeps going."""

from __future__ import annotations

import math
from typing import Any

import pytest
from bson import Decimal128, ObjectId
from pymongo.asynchronous.database import AsyncDatabase

from reactor.client import wait_for_result, wait_for_results
from reactor.config import Settings
from reactor.registry import Registry
from tests.integration import jobs_lib
from tests.integration.jobs_lib import Tally
from tests.integration.lifecycle_lib import wait_for_doc
from tests.integration.reactors import running

Db = AsyncDatabase[dict[str, Any]]

BAD_JOBS: list[tuple[dict[str, Any], str, str]] = [
    ({"job_id": "no-command", "args": {}}, "InvalidJob", "job has no command"),
    (
        {"job_id": "unknown", "command": "nope"},
        "UnknownCommand",
        "unknown command 'nope'; known commands: "
        + ", ".join(jobs_lib.registry(jobs_lib.Tally()).names()),
    ),
    (
        {"job_id": "args-list", "command": "echo", "args": [1]},
        "InvalidJob",
        "args must be a mapping",
    ),
    (
        {"job_id": "args-wrong", "command": "sleep", "args": {"seconds": "soon"}},
        "InvalidArguments",
        "seconds: Input should be a valid number",
    ),
    (
        {"job_id": "args-extra", "command": "sleep", "args": {"minutes": 1}},
        "InvalidArguments",
        "minutes: unexpected argument",
    ),
    (
        {"job_id": "escape", "command": "read_text", "args": {"path": "../../etc/passwd"}},
        "PathEscape",
        "escapes the job directory",
    ),
    (
        {"job_id": "raises", "command": "explode", "args": {"message": "kaput"}},
        "RuntimeError",
        "kaput",
    ),
    (
        {"job_id": "not-bson", "command": "not_bson"},
        "ResultNotStorable",
        "cannot be stored as BSON",
    ),
]


async def test_each_bad_job_fails_clearly_and_work_continues(
    settings: Settings, db: Db, registry: Registry
) -> None:
    """Every kind of bad job gets a failed result naming its problem; a good job still runs."""
    no_id = ObjectId()
    docs = [doc for doc, _, _ in BAD_JOBS] + [{"_id": no_id, "command": "echo"}]
    async with running(settings, registry):
        await db.jobs.insert_many(docs)
        keys = [d["job_id"] for d, _, _ in BAD_JOBS] + [str(no_id)]
        results = await wait_for_results(db, keys, timeout_s=30)
        await db.jobs.insert_one({"job_id": "after", "command": "echo", "args": {"ok": True}})
        after = await wait_for_results(db, ["after"], timeout_s=20)
    for doc, error_type, message in BAD_JOBS:
        error = results[doc["job_id"]]["error"]
        assert results[doc["job_id"]]["status"] == "failed"
        assert error["type"] == error_type, doc
        assert message in error["message"], (doc, error)
        assert error["retryable"] is False
    assert results[str(no_id)]["error"]["message"].startswith("job has no job_id")
    assert results[str(no_id)]["job_doc_id"] == no_id
    assert after["after"]["status"] == "succeeded"


@pytest.mark.parametrize("command", ["explode"])
async def test_handler_tracebacks_are_stored(
    settings: Settings, db: Db, command: str, registry: Registry
) -> None:
    """A handler's exception is stored with its traceback."""
    async with running(settings, registry):
        await db.jobs.insert_one({"job_id": "tb", "command": command})
        result = (await wait_for_results(db, ["tb"], timeout_s=20))["tb"]
    assert "jobs_lib.py" in result["error"]["traceback"]
    assert "RuntimeError: boom" in result["error"]["traceback"]


MALFORMED: list[tuple[str, dict[str, Any]]] = [
    ("attempt-string", {"attempt": "2"}),
    ("attempt-decimal", {"attempt": Decimal128("1")}),
    ("attempt-nan", {"attempt": math.nan}),
    ("attempt-inf", {"attempt": math.inf}),
    ("attempt-huge", {"attempt": 2**63 - 1}),
    ("status-upper", {"status": "QUEUED"}),
    ("status-number", {"status": 7}),
    ("priority-text", {"priority": "high"}),
    ("run-at-text", {"run_at": "tomorrow"}),
]


async def test_malformed_reactor_fields_fail_clearly_and_work_continues(
    settings: Settings, db: Db, registry: Registry, tally: Tally
) -> None:
    """Malformed attempt, status, priority or run_at values end as InvalidJob; the next job runs."""
    docs = [{"job_id": key, "command": "record", **fields} for key, fields in MALFORMED]
    async with running(settings, registry):
        await db.jobs.insert_many(docs)
        results = await wait_for_results(db, [key for key, _ in MALFORMED], timeout_s=30)
        await db.jobs.insert_one({"job_id": "next", "command": "record"})
        after = await wait_for_results(db, ["next"], timeout_s=20)
    for key, fields in MALFORMED:
        field = next(iter(fields))
        assert results[key]["status"] == "failed", key
        assert results[key]["error"]["type"] == "InvalidJob", key
        assert results[key]["error"]["message"].startswith(field), key
        assert tally.runs[key] == 0
    assert (
        "queued, running, succeeded, failed, cancelled"
        in results["status-upper"]["error"]["message"]
    )
    assert after["next"]["status"] == "succeeded"


async def test_null_status_and_a_running_job_without_lease_are_run(
    settings: Settings, db: Db, registry: Registry
) -> None:
    """status null counts as queued; running without a lease counts as an expired lease."""
    async with running(settings, registry):
        await db.jobs.insert_many(
            [
                {"job_id": "null-status", "command": "record", "status": None},
                {"job_id": "leaseless", "command": "record", "status": "running"},
            ]
        )
        results = await wait_for_results(db, ["null-status", "leaseless"], timeout_s=30)
    assert {r["status"] for r in results.values()} == {"succeeded"}


async def test_a_non_numeric_fence_is_repaired_not_a_wedge(
    settings: Settings, db: Db, registry: Registry
) -> None:
    """A fence that is not a number (only the reactor writes it) is reset; claims go on."""
    async with running(settings, registry):
        await db.jobs.insert_one({"job_id": "bad-fence", "command": "record", "fence": "x"})
        await db.jobs.insert_one({"job_id": "behind", "command": "record"})
        results = await wait_for_results(db, ["bad-fence", "behind"], timeout_s=30)
    assert {r["status"] for r in results.values()} == {"succeeded"}


async def test_a_huge_error_message_is_truncated_and_the_service_survives(
    settings: Settings, db: Db, registry: Registry
) -> None:
    """A handler raising a 10 MB message fails with the message cut and its size noted."""
    async with running(settings, registry):
        await db.jobs.insert_one(
            {"job_id": "huge", "command": "explode_big", "args": {"size": 10_000_000}}
        )
        result = await wait_for_result(db, "huge", timeout_s=30)
        await db.jobs.insert_one({"job_id": "fine", "command": "record"})
        fine = await wait_for_result(db, "fine", timeout_s=20)
    assert (result["status"], result["attempt"]) == ("failed", 1)
    assert result["error"]["truncated"]["message"] == 10_000_000
    assert len(result["error"]["message"]) < 10_000
    assert fine["status"] == "succeeded"


async def test_a_deeply_nested_result_is_not_storable(
    settings: Settings, db: Db, registry: Registry
) -> None:
    """A result nested 2,000 deep fails as ResultNotStorable."""
    async with running(settings, registry):
        await db.jobs.insert_one({"job_id": "deep", "command": "deep", "args": {"levels": 2000}})
        result = await wait_for_result(db, "deep", timeout_s=30)
    assert result["error"]["type"] == "ResultNotStorable"


async def test_a_result_is_only_written_for_its_own_job(
    settings: Settings, db: Db, registry: Registry
) -> None:
    """A job without job_id whose _id reads like another job's job_id cannot overwrite it."""
    twin = ObjectId()
    async with running(settings, registry):
        await db.jobs.insert_one({"job_id": str(twin), "command": "record"})
        first = await wait_for_result(db, str(twin), timeout_s=20)
        await db.jobs.insert_one({"_id": twin, "command": "record"})
        job = await wait_for_doc(
            db.jobs, None, lambda d: d.get("status") == "failed", timeout_s=20, doc_id=twin
        )
    result = await db.results.find_one({"job_id": str(twin)})
    assert result is not None
    assert (result["status"], result["job_doc_id"]) == ("succeeded", first["job_doc_id"])
    assert job["error"]["type"] == "ResultRefused"


async def test_a_blocked_loop_is_logged_and_the_job_is_not_reclaimed_by_itself(
    settings: Settings, db: Db, registry: Registry, tally: Tally
) -> None:
    """A loop handler blocking past the lease logs event_loop_blocked; its own reactor never
    claims it a second time, so it runs once and succeeds."""
    async with running(settings, registry, lease_s=1.0, sweep_s=0.2) as reactor:
        await db.jobs.insert_one({"job_id": "hog", "command": "block_loop", "args": {"seconds": 3}})
        result = await wait_for_result(db, "hog", timeout_s=30)
        blocked = reactor.metrics.loop_blocked._value.get()
    assert (result["status"], result["attempt"]) == ("succeeded", 1)
    assert tally.runs["hog"] == 1
    assert blocked >= 1
