"""Malformed jobs end as failed results that say what was wrong, and the service keeps going."""

from __future__ import annotations

from typing import Any

import jobs_lib
import pytest
from bson import ObjectId
from conftest import running
from pymongo.asynchronous.database import AsyncDatabase

from reactor.client import wait_for_results
from reactor.config import Settings

Db = AsyncDatabase[dict[str, Any]]

BAD_JOBS: list[tuple[dict[str, Any], str, str]] = [
    ({"job_id": "no-command", "args": {}}, "InvalidJob", "job has no command"),
    (
        {"job_id": "unknown", "command": "nope"},
        "UnknownCommand",
        "unknown command 'nope'; known commands: " + ", ".join(jobs_lib.registry().names()),
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


async def test_each_bad_job_fails_clearly_and_work_continues(settings: Settings, db: Db) -> None:
    """Every kind of bad job gets a failed result naming its problem; a good job still runs."""
    no_id = ObjectId()
    docs = [doc for doc, _, _ in BAD_JOBS] + [{"_id": no_id, "command": "echo"}]
    async with running(settings, jobs_lib.registry()):
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
async def test_handler_tracebacks_are_stored(settings: Settings, db: Db, command: str) -> None:
    """A handler's exception is stored with its traceback."""
    async with running(settings, jobs_lib.registry()):
        await db.jobs.insert_one({"job_id": "tb", "command": command})
        result = (await wait_for_results(db, ["tb"], timeout_s=20))["tb"]
    assert "jobs_lib.py" in result["error"]["traceback"]
    assert "RuntimeError: boom" in result["error"]["traceback"]
