"""What change events look like on the double: projections, expanded events and stored images."""

from __future__ import annotations

from typing import Any

import pytest
from bson import Binary
from pymongo import AsyncMongoClient
from pymongo.errors import OperationFailure

Doc = dict[str, Any]

REACTOR_PROJECTION = {
    "operationType": 1,
    "documentKey": 1,
    "wallTime": 1,
    "updateDescription.updatedFields": 1,
    "fullDocument.status": 1,
    "fullDocument.priority": 1,
    "fullDocument.run_at": 1,
    "fullDocument.cancel_requested": 1,
}


async def test_nested_inclusion_keeps_only_the_named_paths(client: AsyncMongoClient[Doc]) -> None:
    """The reactor's $project keeps the listed sub-fields of fullDocument and updateDescription."""
    jobs = client.app.jobs
    async with await jobs.watch([{"$project": REACTOR_PROJECTION}]) as stream:
        await jobs.insert_one({"_id": 1, "status": "queued", "args": {"big": "x" * 100}})
        await jobs.update_one({"_id": 1}, {"$set": {"priority": 3}, "$unset": {"args": ""}})
        inserted, updated = await stream.next(), await stream.next()
    assert set(inserted) == {"_id", "operationType", "documentKey", "wallTime", "fullDocument"}
    assert inserted["fullDocument"] == {"status": "queued"}
    assert updated["updateDescription"] == {"updatedFields": {"priority": 3}}
    assert "fullDocument" not in updated


async def test_projection_computes_fields_from_expressions(client: AsyncMongoClient[Doc]) -> None:
    """Field paths, literals and sub-documents with expressions are computed as on MongoDB."""
    jobs = client.app.jobs
    spec = {
        "optype": "$operationType",
        "ns": {"db": "$ns.db", "viewOn": "db.coll"},
        "sum": {"$add": ["$fullDocument.n", 1]},
    }
    async with await jobs.watch([{"$project": spec}]) as stream:
        await jobs.insert_one({"_id": 1, "n": 41})
        event = await stream.next()
    assert event["optype"] == "insert"
    assert event["ns"] == {"db": "app", "viewOn": "db.coll"}
    assert event["sum"] == 42


async def test_paths_into_arrays_apply_to_each_element(client: AsyncMongoClient[Doc]) -> None:
    """Inclusion through an array keeps the field in each element document and drops scalars."""
    jobs = client.app.jobs
    async with await jobs.watch([{"$project": {"fullDocument.items.a": 1}}]) as stream:
        await jobs.insert_one({"_id": 1, "items": [{"a": 1, "b": 2}, 7, {"b": 3}]})
        event = await stream.next()
    assert event["fullDocument"] == {"items": [{"a": 1}, {}]}


async def test_add_fields_and_unset_stages(client: AsyncMongoClient[Doc]) -> None:
    """$addFields sets computed fields, $unset removes dotted paths, the token stays."""
    jobs = client.app.jobs
    pipeline = [{"$addFields": {"fullDocument.twice": {"$multiply": ["$fullDocument.n", 2]}}}]
    pipeline.append({"$unset": ["fullDocument.n", "ns"]})
    async with await jobs.watch(pipeline) as stream:
        await jobs.insert_one({"_id": 1, "n": 4})
        event = await stream.next()
    assert event["fullDocument"] == {"_id": 1, "twice": 8}
    assert "ns" not in event


async def test_mixed_inclusion_and_exclusion_is_refused(client: AsyncMongoClient[Doc]) -> None:
    """Excluding a field in an inclusion projection fails with 31254 when the stream opens."""
    with pytest.raises(OperationFailure) as caught:
        await client.app.jobs.watch([{"$project": {"fullDocument.a": 1, "ns": 0}}])
    assert caught.value.code == 31254


async def test_ddl_events_need_show_expanded_events(client: AsyncMongoClient[Doc]) -> None:
    """create, createIndexes, dropIndexes and modify reach only streams that asked for them."""
    db = client.app
    async with (
        await db.watch(show_expanded_events=True) as expanded,
        await db.watch() as plain,
    ):
        jobs = await db.create_collection("jobs")
        await jobs.create_index("status", name="by_status")
        await jobs.drop_index("by_status")
        await db.command({"collMod": "jobs"})
        await jobs.insert_one({"_id": 1})
        kinds = [(await expanded.next())["operationType"] for _ in range(5)]
        first_plain = await plain.next()
    assert kinds == ["create", "createIndexes", "dropIndexes", "modify", "insert"]
    assert first_plain["operationType"] == "insert"


async def test_create_index_event_describes_the_index(client: AsyncMongoClient[Doc]) -> None:
    """A createIndexes event lists the built index in operationDescription, with collectionUUID."""
    jobs = client.app.jobs
    await jobs.insert_one({"_id": 1, "job_id": "a"})
    async with await jobs.watch(show_expanded_events=True) as stream:
        await jobs.create_index("job_id", unique=True, name="job_id_unique")
        await jobs.insert_one({"_id": 2, "job_id": "b"})
        created, inserted = await stream.next(), await stream.next()
    assert created["operationDescription"] == {
        "indexes": [{"v": 2, "key": {"job_id": 1}, "name": "job_id_unique", "unique": True}]
    }
    assert isinstance(created["collectionUUID"], Binary)
    assert created["collectionUUID"] == inserted["collectionUUID"]


async def test_implicit_creation_emits_create_first(client: AsyncMongoClient[Doc]) -> None:
    """The first insert into a missing collection is preceded by its create event."""
    async with await client.app.watch(show_expanded_events=True) as stream:
        await client.app.fresh.insert_one({"_id": 1})
        kinds = [(await stream.next())["operationType"] for _ in range(2)]
    assert kinds == ["create", "insert"]


async def test_images_exist_only_while_enabled(client: AsyncMongoClient[Doc]) -> None:
    """whenAvailable gives images for writes made after collMod enabled them, null before."""
    jobs = client.app.jobs
    await jobs.insert_one({"_id": 1, "v": 0})
    async with await jobs.watch(
        [{"$match": {"operationType": "update"}}],
        full_document="whenAvailable",
        full_document_before_change="whenAvailable",
    ) as stream:
        await jobs.update_one({"_id": 1}, {"$set": {"v": 1}})
        await client.app.command(
            {"collMod": "jobs", "changeStreamPreAndPostImages": {"enabled": True}}
        )
        await jobs.update_one({"_id": 1}, {"$set": {"v": 2}})
        without, with_images = await stream.next(), await stream.next()
    assert (without["fullDocument"], without["fullDocumentBeforeChange"]) == (None, None)
    assert with_images["fullDocument"] == {"_id": 1, "v": 2}
    assert with_images["fullDocumentBeforeChange"] == {"_id": 1, "v": 1}


async def test_required_image_missing_fails_with_47(client: AsyncMongoClient[Doc]) -> None:
    """fullDocumentBeforeChange required on a collection without images fails with 47."""
    jobs = client.app.jobs
    await jobs.insert_one({"_id": 1})
    stream = await jobs.watch(full_document_before_change="required", max_await_time_ms=50)
    await jobs.delete_one({"_id": 1})
    with pytest.raises(OperationFailure) as caught:
        await stream.next()
    assert caught.value.code == 47
    await stream.close()


async def test_coll_mod_refuses_other_options(client: AsyncMongoClient[Doc]) -> None:
    """collMod with an option the double does not have answers 238, never a silent success."""
    await client.app.jobs.insert_one({"_id": 1})
    with pytest.raises(OperationFailure) as caught:
        await client.app.command({"collMod": "jobs", "validator": {"a": {"$type": "int"}}})
    assert caught.value.code == 238


async def test_large_events_split_into_fragments(client: AsyncMongoClient[Doc]) -> None:
    """$changeStreamSplitLargeEvent splits a 20 MiB event in two; each fragment resumes."""
    images = {"enabled": True}
    big = await client.app.create_collection("big", changeStreamPreAndPostImages=images)
    await big.insert_one({"_id": 1, "value": "q" * 10 * 1024 * 1024})
    pipeline = [{"$changeStreamSplitLargeEvent": {}}]
    async with await big.watch(pipeline, full_document_before_change="required") as stream:
        await big.update_one({"_id": 1}, {"$set": {"value": "z" * 10 * 1024 * 1024}})
        first, second = await stream.next(), await stream.next()
    assert first["splitEvent"] == {"fragment": 1, "of": 2}
    assert second["splitEvent"] == {"fragment": 2, "of": 2}
    assert first["updateDescription"]["updatedFields"]["value"][0] == "z"
    assert second["fullDocumentBeforeChange"]["value"][0] == "q"
    resumed = await big.watch(
        pipeline, full_document_before_change="required", resume_after=first["_id"]
    )
    assert (await resumed.next())["splitEvent"] == {"fragment": 2, "of": 2}
    await resumed.close()


async def test_split_stage_must_come_last(client: AsyncMongoClient[Doc]) -> None:
    """$changeStreamSplitLargeEvent anywhere but last fails when the stream opens."""
    with pytest.raises(OperationFailure) as caught:
        await client.app.jobs.watch(
            [{"$changeStreamSplitLargeEvent": {}}, {"$match": {"operationType": "insert"}}]
        )
    assert caught.value.code == 7182802


async def test_list_collections_uuid_is_the_events_collection_uuid(
    client: AsyncMongoClient[Doc],
) -> None:
    """listCollections info.uuid names the collection as its change events' collectionUUID does."""
    async with await client.app.watch(show_expanded_events=True) as stream:
        await client.app.jobs.insert_one({"_id": 1})
        event = await stream.next()
    (listed,) = await (await client.app.list_collections()).to_list()
    assert listed["info"]["uuid"] == event["collectionUUID"]
