"""Change streams on the double: events, options, resume tokens, invalidation and lost history."""

from __future__ import annotations

from typing import Any

import pytest
from bson import Timestamp
from pymongo import AsyncMongoClient
from pymongo.errors import OperationFailure

from reactor.testing import MongoDouble
from reactor.testing.fixtures import mongo_double, mongo_uri

__all__ = ["mongo_double", "mongo_uri"]  # fixtures used by name below

Doc = dict[str, Any]


async def test_insert_events_carry_the_full_document(client: AsyncMongoClient[Doc]) -> None:
    """An insert arrives with operationType, ns, documentKey, fullDocument and a resume token."""
    jobs = client.app.jobs
    async with await jobs.watch() as stream:
        await jobs.insert_one({"_id": "j1", "command": "ocr"})
        event = await stream.next()
    assert event["operationType"] == "insert"
    assert event["ns"] == {"db": "app", "coll": "jobs"}
    assert event["documentKey"] == {"_id": "j1"}
    assert event["fullDocument"] == {"_id": "j1", "command": "ocr"}
    assert isinstance(event["clusterTime"], Timestamp)
    assert set(event["_id"]) == {"_data"}


async def test_update_events_describe_the_change(client: AsyncMongoClient[Doc]) -> None:
    """An update carries updateDescription; fullDocument appears only with updateLookup."""
    jobs = client.app.jobs
    await jobs.insert_one({"_id": 1, "status": "queued", "tmp": True})
    async with (
        await jobs.watch() as plain,
        await jobs.watch(full_document="updateLookup") as looked,
    ):
        await jobs.update_one({"_id": 1}, {"$set": {"status": "done"}, "$unset": {"tmp": ""}})
        without, with_lookup = await plain.next(), await looked.next()
    assert without["operationType"] == "update"
    assert without["updateDescription"] == {
        "updatedFields": {"status": "done"},
        "removedFields": ["tmp"],
        "truncatedArrays": [],
    }
    assert "fullDocument" not in without
    assert with_lookup["fullDocument"] == {"_id": 1, "status": "done"}


async def test_replace_delete_and_before_images(client: AsyncMongoClient[Doc]) -> None:
    """Replace and delete events arrive in order, with pre-images once the collection keeps them."""
    jobs = await client.app.create_collection(
        "jobs", changeStreamPreAndPostImages={"enabled": True}
    )
    await jobs.insert_one({"_id": 1, "v": 1})
    async with await jobs.watch(full_document_before_change="whenAvailable") as stream:
        await jobs.replace_one({"_id": 1}, {"v": 2})
        await jobs.delete_one({"_id": 1})
        replaced, deleted = await stream.next(), await stream.next()
    assert replaced["operationType"] == "replace"
    assert replaced["fullDocument"] == {"_id": 1, "v": 2}
    assert replaced["fullDocumentBeforeChange"] == {"_id": 1, "v": 1}
    assert deleted["operationType"] == "delete"
    assert deleted["documentKey"] == {"_id": 1}
    assert deleted["fullDocumentBeforeChange"] == {"_id": 1, "v": 2}


async def test_match_on_dotted_update_description_path(client: AsyncMongoClient[Doc]) -> None:
    """A $match on updateDescription.updatedFields.status passes only the matching updates."""
    jobs = client.app.jobs
    await jobs.insert_many([{"_id": 1, "status": "queued"}, {"_id": 2, "status": "queued"}])
    pipeline = [{"$match": {"updateDescription.updatedFields.status": "done"}}]
    async with await jobs.watch(pipeline) as stream:
        await jobs.update_one({"_id": 1}, {"$set": {"status": "running"}})
        await jobs.update_one({"_id": 2}, {"$set": {"status": "done"}})
        event = await stream.next()
    assert event["documentKey"] == {"_id": 2}


async def test_project_stage_shapes_events(client: AsyncMongoClient[Doc]) -> None:
    """A $project after $changeStream keeps only the listed fields (and the resume token)."""
    jobs = client.app.jobs
    async with await jobs.watch([{"$project": {"operationType": 1, "documentKey": 1}}]) as stream:
        await jobs.insert_one({"_id": 5, "big": "x" * 100})
        event = await stream.next()
    assert set(event) == {"_id", "operationType", "documentKey"}


async def test_unsupported_stage_is_refused(client: AsyncMongoClient[Doc]) -> None:
    """A stage the double cannot run after $changeStream fails clearly when the stream opens."""
    with pytest.raises(OperationFailure, match="not supported by the mongo-reactor test double"):
        await client.app.jobs.watch([{"$redact": "$$KEEP"}])


async def test_database_stream_sees_every_collection(client: AsyncMongoClient[Doc]) -> None:
    """A database-level stream reports writes to all of its collections, and no others."""
    async with await client.app.watch() as stream:
        await client.other.things.insert_one({"_id": 0})
        await client.app.jobs.insert_one({"_id": 1})
        await client.app.results.insert_one({"_id": 2})
        first, second = await stream.next(), await stream.next()
    assert [first["ns"]["coll"], second["ns"]["coll"]] == ["jobs", "results"]


async def test_resume_after_client_restart_misses_nothing(
    mongo_uri: str, client: AsyncMongoClient[Doc]
) -> None:
    """A token stored by one client resumes in a new client with every later event, in order."""
    jobs = client.app.jobs
    async with await jobs.watch() as stream:
        await jobs.insert_many([{"_id": i} for i in range(3)])
        await stream.next()
        token = stream.resume_token
    await jobs.insert_many([{"_id": i} for i in range(3, 6)])
    async with AsyncMongoClient[Doc](mongo_uri) as fresh:
        resumed = await fresh.app.jobs.watch(resume_after=token)
        ids = [(await resumed.next())["documentKey"]["_id"] for _ in range(5)]
        await resumed.close()
    assert ids == [1, 2, 3, 4, 5]


async def test_start_at_operation_time(client: AsyncMongoClient[Doc]) -> None:
    """startAtOperationTime replays the events from that cluster time on."""
    jobs = client.app.jobs
    first = await jobs.insert_one({"_id": 1})
    async with client.start_session() as session:
        await jobs.insert_one({"_id": 2}, session=session)
        start = session.operation_time
    assert first.acknowledged
    assert start is not None
    async with await jobs.watch(start_at_operation_time=start) as stream:
        assert (await stream.next())["documentKey"] == {"_id": 2}


async def test_idle_post_batch_resume_token_advances(client: AsyncMongoClient[Doc]) -> None:
    """An empty getMore still moves the resume token forward, as a replica set's would."""
    async with await client.app.jobs.watch(max_await_time_ms=20) as stream:
        opened = stream.resume_token
        assert await stream.try_next() is None
        idle = stream.resume_token
        assert await stream.try_next() is None
        later = stream.resume_token
    assert opened is not None
    assert idle is not None
    assert later is not None
    assert opened["_data"] < idle["_data"] < later["_data"]


async def test_drop_invalidates_a_collection_stream(client: AsyncMongoClient[Doc]) -> None:
    """Dropping the watched collection yields drop then invalidate, and the stream closes."""
    jobs = client.app.jobs
    await jobs.insert_one({"_id": 1})
    stream = await jobs.watch()
    await jobs.drop()
    drop, invalidate = await stream.next(), await stream.next()
    assert drop["operationType"] == "drop"
    assert invalidate["operationType"] == "invalidate"
    assert not stream.alive
    await jobs.insert_one({"_id": 2})
    async with await jobs.watch(start_after=invalidate["_id"]) as after:
        assert (await after.next())["documentKey"] == {"_id": 2}


async def test_forgotten_history_fails_resume_with_286(
    client: AsyncMongoClient[Doc], mongo_double: MongoDouble
) -> None:
    """After forget_history, resuming from an older token fails with 286 and no resumable label."""
    jobs = client.app.jobs
    async with await jobs.watch() as stream:
        await jobs.insert_one({"_id": 1})
        await stream.next()
        token = stream.resume_token
    mongo_double.forget_history()
    with pytest.raises(OperationFailure) as caught:
        await jobs.watch(resume_after=token)
    assert caught.value.code == 286
    assert caught.value.details is not None
    assert caught.value.details["codeName"] == "ChangeStreamHistoryLost"
    assert not caught.value.has_error_label("ResumableChangeStreamError")


async def test_foreign_resume_token_is_invalid(client: AsyncMongoClient[Doc]) -> None:
    """A resume token the double did not issue fails with 260 InvalidResumeToken."""
    with pytest.raises(OperationFailure) as caught:
        await client.app.jobs.watch(resume_after={"_data": "not-ours"})
    assert caught.value.code == 260


async def test_cluster_stream_sees_every_database(client: AsyncMongoClient[Doc]) -> None:
    """client.watch() reports writes in any database."""
    async with await client.watch() as stream:
        await client.one.things.insert_one({"_id": 1})
        await client.two.things.insert_one({"_id": 2})
        first, second = await stream.next(), await stream.next()
    assert [first["ns"]["db"], second["ns"]["db"]] == ["one", "two"]


async def test_drop_database_invalidates_a_database_stream(client: AsyncMongoClient[Doc]) -> None:
    """dropDatabase yields a drop per collection, dropDatabase, then invalidate."""
    await client.gone.a.insert_one({"_id": 1})
    stream = await client.gone.watch()
    await client.drop_database("gone")
    kinds = [(await stream.next())["operationType"] for _ in range(3)]
    assert kinds == ["drop", "dropDatabase", "invalidate"]
    assert not stream.alive


async def test_resuming_after_the_drop_replays_the_invalidate(
    client: AsyncMongoClient[Doc],
) -> None:
    """resumeAfter the drop event's token delivers the invalidate that followed it."""
    jobs = client.app.jobs
    await jobs.insert_one({"_id": 1})
    stream = await jobs.watch()
    await jobs.drop()
    drop = await stream.next()
    await stream.close()
    resumed = await jobs.watch(resume_after=drop["_id"])
    assert (await resumed.next())["operationType"] == "invalidate"
    assert not resumed.alive


async def test_pipeline_removing_the_token_is_fatal(client: AsyncMongoClient[Doc]) -> None:
    """A $project that drops _id makes the stream fail with 280, as on MongoDB."""
    jobs = client.app.jobs
    stream = await jobs.watch([{"$project": {"_id": 0}}])
    await jobs.insert_one({"_id": 1})
    with pytest.raises(OperationFailure) as caught:
        await stream.next()
    assert caught.value.code == 280


async def test_update_lookup_of_a_deleted_document_is_null(client: AsyncMongoClient[Doc]) -> None:
    """updateLookup returns null when the document was deleted before delivery."""
    jobs = client.app.jobs
    await jobs.insert_one({"_id": 1, "n": 0})
    async with await jobs.watch(
        [{"$match": {"operationType": "update"}}], "updateLookup"
    ) as stream:
        await jobs.update_one({"_id": 1}, {"$inc": {"n": 1}})
        await jobs.delete_one({"_id": 1})
        event = await stream.next()
    assert event["fullDocument"] is None
    assert event["updateDescription"]["updatedFields"] == {"n": 1}


async def test_batch_size_splits_events_and_tokens_follow(client: AsyncMongoClient[Doc]) -> None:
    """With batchSize 2, five events arrive in order and the token tracks the last one read."""
    jobs = client.app.jobs
    async with await jobs.watch(batch_size=2) as stream:
        await jobs.insert_many([{"_id": i} for i in range(5)])
        ids = []
        for _ in range(5):
            event = await stream.next()
            ids.append(event["documentKey"]["_id"])
            token = stream.resume_token
            assert token is not None
            assert token["_data"] >= event["_id"]["_data"]
    assert ids == [0, 1, 2, 3, 4]


async def test_drop_database_invalidates_a_collection_stream(client: AsyncMongoClient[Doc]) -> None:
    """A collection stream sees its collection's drop, then invalidate, on dropDatabase."""
    jobs = client.gone.jobs
    await jobs.insert_one({"_id": 1})
    stream = await jobs.watch()
    await client.drop_database("gone")
    kinds = [(await stream.next())["operationType"] for _ in range(2)]
    assert kinds == ["drop", "invalidate"]
    assert not stream.alive
