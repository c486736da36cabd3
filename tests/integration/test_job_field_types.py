"""Raw PyMongo writes with fields of the wrong type fail clearly; priority follows one rule."""

from __future__ import annotations

import math
from typing import Any

from bson import ObjectId
from pymongo.asynchronous.database import AsyncDatabase

from reactor.client import wait_for_results
from reactor.config import Settings
from reactor.registry import Registry
from tests.integration.jobs_lib import Tally
from tests.integration.reactors import running

Db = AsyncDatabase[dict[str, Any]]


async def test_wrongly_typed_command_and_job_id_are_named(
    settings: Settings, db: Db, registry: Registry, tally: Tally
) -> None:
    """command 42 and job_id 12345 fail as InvalidJob naming the type, not as missing fields."""
    no_string_id = ObjectId()
    async with running(settings, registry):
        await db.jobs.insert_many(
            [
                {"job_id": "numeric-command", "command": 42, "args": {}},
                {"_id": no_string_id, "job_id": 12345, "command": "record", "args": {}},
            ]
        )
        results = await wait_for_results(db, ["numeric-command", str(no_string_id)], timeout_s=30)
    command_error = results["numeric-command"]["error"]
    assert command_error["type"] == "InvalidJob"
    assert command_error["message"].startswith("command 42 is an integer, not a non-empty string")
    id_error = results[str(no_string_id)]["error"]
    assert id_error["message"].startswith("job_id 12345 is an integer, not a non-empty string")
    assert f"keyed by its _id {no_string_id}" in id_error["message"]
    assert tally.runs[str(no_string_id)] == 0


async def test_a_fractional_priority_runs_and_an_infinite_one_fails(
    settings: Settings, db: Db, registry: Registry, tally: Tally
) -> None:
    """priority 2.5 is a priority; infinity and "high" end as InvalidJob with the one rule."""
    docs = [
        {"job_id": "p-fraction", "command": "record", "priority": 2.5},
        {"job_id": "p-infinite", "command": "record", "priority": math.inf},
        {"job_id": "p-minus-infinite", "command": "record", "priority": -math.inf},
        {"job_id": "p-text", "command": "record", "priority": "high"},
    ]
    async with running(settings, registry):
        await db.jobs.insert_many(docs)
        results = await wait_for_results(db, [d["job_id"] for d in docs], timeout_s=30)
    assert results["p-fraction"]["status"] == "succeeded"
    for doc in docs[1:]:
        result = results[doc["job_id"]]
        assert result["status"] == "failed", doc
        message = result["error"]["message"]
        assert message.startswith(f"priority {doc['priority']!r} is not a finite number"), doc
        assert "such as 5, -1 or 2.5" in message
        assert tally.runs[doc["job_id"]] == 0
