"""A polling loop's collections are adopted: finished jobs are never run again."""

from __future__ import annotations

from typing import Any

import anyio
import pytest
from pymongo.asynchronous.database import AsyncDatabase

from reactor.cli import main as cli
from reactor.client import wait_for_result
from reactor.config import Settings
from reactor.errors import ConfigError
from reactor.registry import Registry
from tests.integration.jobs_lib import Tally
from tests.integration.reactors import running

Db = AsyncDatabase[dict[str, Any]]

OLD = 100


async def _seed(db: Db) -> None:
    """What the loop left: jobs without status, results of returned values and exceptions."""
    await db.jobs.insert_many(
        [{"job_id": f"old-{i}", "command": "record", "args": {"i": i}} for i in range(OLD)]
    )
    await db.results.insert_many(
        [
            {"job_id": f"old-{i}", "result": {"i": i}}
            if i % 4
            else {"job_id": f"old-{i}", "exception": "ValueError: no paper"}
            for i in range(OLD)
        ]
    )


async def test_old_jobs_with_results_are_adopted_not_rerun(
    settings: Settings, db: Db, registry: Registry, tally: Tally
) -> None:
    """100 old jobs with their 100 results: none runs again, all end adopted with the status
    their result implies; a new job still runs."""
    await _seed(db)
    async with running(settings, registry) as reactor:
        await db.jobs.insert_one({"job_id": "new", "command": "record"})
        await wait_for_result(db, "new", timeout_s=30)
        adopted = reactor.metrics.adopted._value.get()
    assert adopted == OLD
    assert sum(tally.runs[f"old-{i}"] for i in range(OLD)) == 0
    statuses = {
        doc["job_id"]: doc["status"] async for doc in db.jobs.find({"job_id": {"$regex": "^old-"}})
    }
    assert list(statuses.values()).count("failed") == OLD // 4
    assert list(statuses.values()).count("succeeded") == OLD - OLD // 4
    assert await db.jobs.count_documents({"adopted_at": {"$exists": True}}) == OLD
    assert await db.results.count_documents({}) == OLD + 1  # the old results are kept as they were


async def test_duplicate_job_ids_stop_startup_with_a_message(
    settings: Settings, db: Db, registry: Registry
) -> None:
    """Two old results for one job_id stop startup naming it and saying how to fix it."""
    await db.results.insert_many(
        [{"job_id": "twice", "result": 1}, {"job_id": "twice", "result": 2}]
    )
    with pytest.raises(ExceptionGroup) as caught:
        async with running(settings, registry):
            pass
    errors = caught.value.exceptions
    assert isinstance(errors[0], ConfigError)
    message = str(errors[0])
    assert "results holds duplicate job_id values: 'twice' (2 documents)" in message
    assert "reactor migrate --check" in message


async def test_migrate_check_reports_and_apply_adopts(
    settings: Settings, db: Db, capsys: pytest.CaptureFixture[str]
) -> None:
    """reactor migrate --check says what startup would do; --apply does it."""
    await _seed(db)
    flags = ["--mongo-uri", settings.mongo_uri, "--db", settings.db]

    async def migrate(mode: str) -> str:
        assert await anyio.to_thread.run_sync(cli, ["migrate", mode, *flags]) == 0
        return capsys.readouterr().out

    assert "would adopt: 100 (25 failed, 75 succeeded)" in await migrate("--check")
    assert "adopted: 100 (25 failed, 75 succeeded)" in await migrate("--apply")
    assert "would adopt: 0" in await migrate("--check")
    assert await db.jobs.count_documents({"status": "succeeded"}) == 75
