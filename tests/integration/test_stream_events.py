"""What the reactor's change stream delivers, through the server's (or the double's) pipeline."""

from __future__ import annotations

from typing import Any

import anyio
import bson
from pymongo.asynchronous.database import AsyncDatabase

from reactor.stream import jobs_pipeline

Db = AsyncDatabase[dict[str, Any]]
BIG = "x" * 8_000_000  # arguments of 8 MB: a job MongoDB stores, an event that must not carry it


async def _next_events(stream: Any, n: int) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    with anyio.fail_after(30):
        while len(events) < n:
            change = await stream.try_next()
            if change is not None:
                events.append(change)
    return events


async def test_events_keep_only_the_fields_the_reactor_reads(db: Db) -> None:
    """An insert, a client's update and another reactor's claim of a job whose arguments are
    8 MB arrive as events of a few hundred bytes, with the fields the reactor reads; this
    reactor's own claim does not arrive at all."""
    async with await db.jobs.watch(jobs_pipeline("me"), max_await_time_ms=200) as stream:
        await db.jobs.insert_one({"_id": 1, "job_id": "big", "command": "echo",
                                  "args": {"blob": BIG}, "priority": 2})  # fmt: skip
        await db.jobs.update_one({"_id": 1}, {"$set": {"cancel_requested": True,
                                                       "args.blob": BIG + "y"}})  # fmt: skip
        await db.jobs.update_one({"_id": 1}, {"$set": {"status": "running", "claim_id": 7,
                                                       "lease_owner": "me"}})  # fmt: skip
        await db.jobs.update_one({"_id": 1}, {"$set": {"status": "running", "claim_id": 8,
                                                       "lease_owner": "other"}})  # fmt: skip
        inserted, cancelled, claimed = await _next_events(stream, 3)
    sizes = [len(bson.encode(event)) for event in (inserted, cancelled, claimed)]
    assert max(sizes) < 1000, sizes
    assert inserted["fullDocument"] == {"priority": 2}
    assert cancelled["updateDescription"]["updatedFields"] == {"cancel_requested": True}
    claim = claimed["updateDescription"]["updatedFields"]
    assert claim == {"claim_id": 8, "lease_owner": "other"}  # status: unchanged, not an update
