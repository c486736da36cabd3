"""A job adopted from a polling loop's failed result reads sensibly after ``reactor retry``."""

from __future__ import annotations

from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from reactor import client, job_view
from reactor.config import Settings
from reactor.registry import Registry
from tests.integration.lifecycle_lib import run_done, wait_for_doc
from tests.integration.reactors import running

Db = AsyncDatabase[dict[str, Any]]


async def test_the_rerun_of_an_adopted_failure_keeps_a_filled_in_history(
    settings: Settings, db: Db, registry: Registry
) -> None:
    """Run 1 (the loop's error) becomes {failed, 1 attempt, ValueError, its time} in history."""
    await db.jobs.insert_one({"job_id": "scan-2", "command": "record", "args": {}})
    inserted = await db.results.insert_one(
        {"job_id": "scan-2", "error": "ValueError('no such page')", "traceback": "..."}
    )
    async with running(settings, registry):
        adopted = await wait_for_doc(
            db.jobs, "scan-2", lambda d: d.get("status") == "failed", timeout_s=30
        )
        job, old = await client.job_status(db, "scan-2")
        page = job_view.status_page(job, old)
        await client.retry(db, "scan-2")
        result = await wait_for_doc(db.results, "scan-2", run_done(2), timeout_s=30)
    assert adopted["adopted_at"] is not None
    assert "result    failed (run 1, written before adoption at" in page
    assert "error     ValueError: no such page" in page
    assert result["status"] == "succeeded"
    [entry] = result["history"]
    assert entry == {
        "run": 1,
        "status": "failed",
        "attempts": 1,
        "error_type": "ValueError",
        "finished_at": inserted.inserted_id.generation_time,
    }
