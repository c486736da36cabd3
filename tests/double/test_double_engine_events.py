"""The engine's writes as change events: when collections appear, what claims report, atomicity."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from pymongo import AsyncMongoClient, ReturnDocument
from pymongo.errors import OperationFailure

Doc = dict[str, Any]


async def test_writes_that_match_nothing_create_no_collection(
    client: AsyncMongoClient[Doc],
) -> None:
    """An update, a delete and a findAndModify without upsert leave a missing collection missing."""
    ghost = client.app.ghost
    async with await client.app.watch(show_expanded_events=True) as stream:
        await ghost.update_one({"x": 1}, {"$set": {"y": 2}})
        await ghost.delete_many({"x": 1})
        assert await ghost.find_one_and_update({"x": 1}, {"$set": {"y": 2}}) is None
        await client.app.marker.insert_one({"_id": 1})
        kinds = [(await stream.next())["operationType"] for _ in range(2)]
    assert kinds == ["create", "insert"]  # the marker's, nothing for ghost
    assert await client.app.list_collection_names() == ["marker"]


async def test_an_upsert_creates_the_collection_before_its_insert(
    client: AsyncMongoClient[Doc],
) -> None:
    """An upsert into a missing collection records create, then the upserted insert."""
    async with await client.app.watch(show_expanded_events=True) as stream:
        await client.app.state.update_one({"_id": "s"}, {"$set": {"token": 1}}, upsert=True)
        events = [await stream.next() for _ in range(2)]
    assert [event["operationType"] for event in events] == ["create", "insert"]
    assert events[1]["fullDocument"] == {"_id": "s", "token": 1}


async def test_a_claim_reports_the_fields_its_update_named(client: AsyncMongoClient[Doc]) -> None:
    """A findAndModify claim's event lists the $set, $inc, $max and $min paths it changed."""
    jobs = client.app.jobs
    created = dt.datetime(2020, 1, 1)
    await jobs.insert_one({"_id": 1, "status": "queued", "meta": {"n": 1}, "created_at": created})
    now = dt.datetime(2030, 1, 1)
    async with await jobs.watch([{"$match": {"operationType": "update"}}]) as stream:
        before = await jobs.find_one_and_update(
            {"status": {"$in": [None, "queued"]}},
            {
                "$set": {"status": "running", "meta.owner": "me"},
                "$inc": {"fence": 1},
                "$max": {"attempt": 1},
                "$min": {"created_at": now},
            },
            sort=[("_id", 1)],
            return_document=ReturnDocument.BEFORE,
        )
        event = await stream.next()
    assert before is not None
    assert before["status"] == "queued"
    assert event["updateDescription"] == {
        "updatedFields": {"attempt": 1, "fence": 1, "meta.owner": "me", "status": "running"},
        "removedFields": [],
        "truncatedArrays": [],
    }


async def test_a_failing_update_records_no_event(client: AsyncMongoClient[Doc]) -> None:
    """An update that fails with 14 changes nothing and emits nothing; the next write is seen."""
    jobs = client.app.jobs
    await jobs.insert_one({"_id": 1, "fence": "not a number", "status": "queued"})
    async with await jobs.watch([{"$match": {"operationType": "update"}}]) as stream:
        with pytest.raises(OperationFailure) as failed:
            await jobs.update_one({"_id": 1}, {"$set": {"status": "running"}, "$inc": {"fence": 1}})
        await jobs.update_one({"_id": 1}, {"$set": {"status": "parked"}})
        event = await stream.next()
    assert failed.value.code == 14
    assert event["updateDescription"]["updatedFields"] == {"status": "parked"}
    assert await jobs.find_one({"_id": 1}) == {
        "_id": 1,
        "fence": "not a number",
        "status": "parked",
    }


async def test_create_indexes_builds_all_or_none(client: AsyncMongoClient[Doc]) -> None:
    """When one index of a createIndexes cannot be built, none of them is, and no event says so."""
    jobs = client.app.jobs
    await jobs.insert_many([{"_id": 1, "k": "a"}, {"_id": 2, "k": "a"}])
    command = {
        "createIndexes": "jobs",
        "indexes": [
            {"key": {"other": 1}, "name": "other_1"},
            {"key": {"k": 1}, "name": "k_unique", "unique": True},
        ],
    }
    async with await jobs.watch(show_expanded_events=True) as stream:
        with pytest.raises(OperationFailure) as failed:
            await client.app.command(command)
        await jobs.insert_one({"_id": 3})
        event = await stream.next()
    assert failed.value.code == 11000
    assert event["operationType"] == "insert"
    assert sorted([index["name"] async for index in await jobs.list_indexes()]) == ["_id_"]
