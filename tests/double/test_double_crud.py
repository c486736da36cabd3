"""CRUD, indexes, cursors and GridFS through the double with the real AsyncMongoClient."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator
from typing import Any

import gridfs.errors
import pytest
from gridfs import AsyncGridFSBucket
from pymongo import ASCENDING, DESCENDING, AsyncMongoClient, ReturnDocument, monitoring
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import BulkWriteError, DuplicateKeyError, OperationFailure
from pymongo.read_concern import ReadConcern

from reactor.testing.fixtures import mongo_double, mongo_uri

__all__ = ["mongo_double", "mongo_uri"]  # fixtures used by name below

Doc = dict[str, Any]


class Replies(monitoring.CommandListener):
    """Keeps every command started and every successful reply, in order."""

    def __init__(self) -> None:
        self.commands: list[monitoring.CommandStartedEvent] = []
        self.replies: list[monitoring.CommandSucceededEvent] = []

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        self.commands.append(event)

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        self.replies.append(event)

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


@pytest.fixture
def replies() -> Replies:
    return Replies()


@pytest.fixture
async def client(mongo_uri: str, replies: Replies) -> AsyncIterator[AsyncMongoClient[Doc]]:
    client: AsyncMongoClient[Doc] = AsyncMongoClient(
        mongo_uri, serverSelectionTimeoutMS=5000, event_listeners=[replies]
    )
    yield client
    await client.close()


@pytest.fixture
def jobs(client: AsyncMongoClient[Doc]) -> AsyncCollection[Doc]:
    return client.app.jobs


async def test_insert_find_update_delete(jobs: AsyncCollection[Doc]) -> None:
    """Documents can be inserted, queried with sort and projection, updated and deleted."""
    await jobs.insert_many(
        [{"_id": i, "n": i, "tag": "odd" if i % 2 else "even"} for i in range(6)]
    )
    odd = await jobs.find({"tag": "odd"}, {"_id": 0, "n": 1}).sort("n", DESCENDING).to_list()
    assert odd == [{"n": 5}, {"n": 3}, {"n": 1}]
    result = await jobs.update_many({"tag": "even"}, {"$inc": {"n": 10}})
    assert (result.matched_count, result.modified_count) == (3, 3)
    upsert = await jobs.update_one({"_id": 99}, {"$set": {"n": 0}}, upsert=True)
    assert upsert.upserted_id == 99
    assert (await jobs.delete_many({"n": {"$gte": 10}})).deleted_count == 3
    assert await jobs.count_documents({}) == 4
    assert await jobs.estimated_document_count() == 4
    assert sorted(await jobs.distinct("tag")) == ["odd"]


async def test_replace_and_delete_one(jobs: AsyncCollection[Doc]) -> None:
    """replace_one swaps the whole document and delete_one removes a single match."""
    await jobs.insert_many([{"_id": 1, "a": 1}, {"_id": 2, "a": 1}])
    await jobs.replace_one({"_id": 1}, {"b": 2})
    assert await jobs.find_one({"_id": 1}) == {"_id": 1, "b": 2}
    assert (await jobs.delete_one({"a": 1})).deleted_count == 1
    assert await jobs.count_documents({}) == 1


async def test_unique_index_duplicate_key_error_shape(client: AsyncMongoClient[Doc]) -> None:
    """A unique-index collision raises DuplicateKeyError with index, keyPattern and keyValue."""
    users = client.app.users
    assert await users.create_index("email", unique=True) == "email_1"
    await users.insert_one({"email": "a@example.com"})
    with pytest.raises(DuplicateKeyError) as caught:
        await users.insert_one({"email": "a@example.com"})
    details = caught.value.details
    assert details is not None
    assert caught.value.code == 11000
    assert details["keyPattern"] == {"email": 1}
    assert details["keyValue"] == {"email": "a@example.com"}
    assert details["errmsg"].startswith(
        'E11000 duplicate key error collection: app.users index: email_1 dup key: { email: "a@'
    )


async def test_unordered_bulk_insert_reports_each_duplicate(jobs: AsyncCollection[Doc]) -> None:
    """An unordered insert_many inserts the good documents and lists each duplicate's index."""
    await jobs.insert_one({"_id": 1})
    with pytest.raises(BulkWriteError) as caught:
        await jobs.insert_many([{"_id": 1}, {"_id": 2}, {"_id": 2}, {"_id": 3}], ordered=False)
    errors = caught.value.details["writeErrors"]
    assert [(e["index"], e["code"]) for e in errors] == [(0, 11000), (2, 11000)]
    assert errors[0]["keyPattern"] == {"_id": 1}
    assert caught.value.details["nInserted"] == 2


async def test_update_into_a_duplicate_is_a_write_error(client: AsyncMongoClient[Doc]) -> None:
    """An update that would collide on a unique index fails and leaves the document as it was."""
    users = client.app.users
    await users.create_index("email", unique=True)
    await users.insert_many([{"_id": 1, "email": "a"}, {"_id": 2, "email": "b"}])
    with pytest.raises(DuplicateKeyError) as caught:
        await users.update_one({"_id": 2}, {"$set": {"email": "a"}})
    assert caught.value.details is not None
    assert caught.value.details["keyValue"] == {"email": "a"}
    assert await users.find_one({"_id": 2}) == {"_id": 2, "email": "b"}


async def test_find_and_modify_claims_each_job_once(jobs: AsyncCollection[Doc]) -> None:
    """Concurrent find_one_and_update claims hand each queued job to exactly one claimer."""
    await jobs.insert_many([{"_id": i, "status": "queued", "priority": i} for i in range(3)])

    async def claim(owner: int) -> Doc | None:
        return await jobs.find_one_and_update(
            {"status": "queued"},
            {"$set": {"status": "running", "owner": owner}},
            sort=[("priority", DESCENDING)],
            return_document=ReturnDocument.AFTER,
        )

    claimed = await asyncio.gather(*(claim(owner) for owner in range(5)))
    won = [doc for doc in claimed if doc is not None]
    assert sorted(doc["_id"] for doc in won) == [0, 1, 2]
    assert all(doc["status"] == "running" for doc in won)
    assert claimed.count(None) == 2
    assert claimed[0] == {"_id": 2, "status": "running", "priority": 2, "owner": 0}


async def test_find_and_modify_variants(jobs: AsyncCollection[Doc]) -> None:
    """findAndModify returns the old document, upserts, projects fields and removes."""
    await jobs.insert_one({"_id": 1, "n": 1, "secret": "x"})
    before = await jobs.find_one_and_update({"_id": 1}, {"$inc": {"n": 1}}, {"secret": 0})
    assert before == {"_id": 1, "n": 1}
    created = await jobs.find_one_and_update(
        {"_id": 2}, {"$set": {"n": 5}}, upsert=True, return_document=ReturnDocument.AFTER
    )
    assert created == {"_id": 2, "n": 5}
    assert await jobs.find_one_and_delete({"n": 5}) == {"_id": 2, "n": 5}
    assert await jobs.find_one_and_replace({"_id": 1}, {"n": 9}) is not None
    assert await jobs.find_one({"_id": 1}) == {"_id": 1, "n": 9}


async def test_find_and_modify_duplicate_key(client: AsyncMongoClient[Doc]) -> None:
    """A colliding findAndModify raises DuplicateKeyError with codeName DuplicateKey."""
    users = client.app.users
    await users.create_index("email", unique=True)
    await users.insert_many([{"_id": 1, "email": "a"}, {"_id": 2, "email": "b"}])
    with pytest.raises(DuplicateKeyError) as caught:
        await users.find_one_and_update({"_id": 2}, {"$set": {"email": "a"}})
    assert caught.value.details is not None
    assert caught.value.details["codeName"] == "DuplicateKey"


async def test_cursor_batches_and_get_more(jobs: AsyncCollection[Doc], replies: Replies) -> None:
    """A find with batchSize 3 over 10 documents takes three getMores and ends with cursor id 0."""
    await jobs.insert_many([{"_id": i} for i in range(10)])
    docs = await jobs.find().sort("_id", ASCENDING).batch_size(3).to_list()
    assert [doc["_id"] for doc in docs] == list(range(10))
    get_mores = [r for r in replies.replies if r.command_name == "getMore"]
    assert [len(r.reply["cursor"]["nextBatch"]) for r in get_mores] == [3, 3, 1]
    assert get_mores[-1].reply["cursor"]["id"] == 0


async def test_limit_skip_and_killed_cursor(jobs: AsyncCollection[Doc], replies: Replies) -> None:
    """skip and limit are honoured, and closing a cursor early kills it on the server."""
    await jobs.insert_many([{"_id": i} for i in range(10)])
    page = await jobs.find().sort("_id", ASCENDING).skip(2).limit(3).to_list()
    assert [doc["_id"] for doc in page] == [2, 3, 4]
    cursor = jobs.find().batch_size(2)
    await cursor.next()
    await cursor.close()
    kills = [r for r in replies.replies if r.command_name == "killCursors"]
    assert len(kills) == 1
    assert len(kills[0].reply["cursorsKilled"]) == 1


async def test_aggregate_pipeline(jobs: AsyncCollection[Doc]) -> None:
    """A plain aggregation pipeline runs through mongomock and comes back as a cursor."""
    await jobs.insert_many([{"kind": k} for k in "aabbbc"])
    cursor = await jobs.aggregate(
        [{"$group": {"_id": "$kind", "n": {"$sum": 1}}}, {"$sort": {"n": -1}}], batchSize=1
    )
    assert await cursor.to_list() == [
        {"_id": "b", "n": 3},
        {"_id": "a", "n": 2},
        {"_id": "c", "n": 1},
    ]


async def test_out_refuses_a_linearizable_read_concern(jobs: AsyncCollection[Doc]) -> None:
    """$out with readConcern linearizable answers 72 and writes nothing, as MongoDB does."""
    await jobs.insert_one({"_id": 1})
    strict = jobs.with_options(read_concern=ReadConcern("linearizable"))
    with pytest.raises(OperationFailure) as caught:
        await strict.aggregate([{"$out": "copy"}])
    assert caught.value.code == 72
    assert "copy" not in await jobs.database.list_collection_names()
    await jobs.aggregate([{"$out": "copy"}])
    assert await jobs.database.copy.find_one() == {"_id": 1}


async def test_collection_and_index_administration(client: AsyncMongoClient[Doc]) -> None:
    """Collections and indexes can be created, listed and dropped."""
    db = client.admin_test
    await db.create_collection("things")
    with pytest.raises(OperationFailure) as caught:
        await db.command("create", "things")
    assert caught.value.code == 48
    await db.things.create_index([("a", ASCENDING), ("b", DESCENDING)], name="ab")
    assert await db.list_collection_names(filter={"name": "things"}) == ["things"]
    names = [index["name"] async for index in await db.things.list_indexes()]
    assert names == ["_id_", "ab"]
    await db.things.drop_index("ab")
    assert list(await db.things.index_information()) == ["_id_"]
    assert "admin_test" in await client.list_database_names()
    await db.drop_collection("things")
    assert await db.list_collection_names() == []
    await client.drop_database("admin_test")
    assert "admin_test" not in await client.list_database_names()


async def test_system_databases_are_listed_and_kept(client: AsyncMongoClient[Doc]) -> None:
    """listDatabases names admin, config and local, as any replica set does; admin stays."""
    await client.app.jobs.insert_one({})
    assert await client.list_database_names() == ["admin", "app", "config", "local"]
    only_admin = await (await client.list_databases(filter={"name": "admin"})).to_list()
    assert [doc["name"] for doc in only_admin] == ["admin"]
    with pytest.raises(OperationFailure) as caught:
        await client.drop_database("admin")
    assert caught.value.code == 20


async def test_gridfs_round_trip(client: AsyncMongoClient[Doc]) -> None:
    """A GridFS upload of several chunks downloads byte for byte, and delete removes it."""
    bucket = AsyncGridFSBucket(client.files)
    data = bytes(range(256)) * 3000  # ~750 kB: three chunks
    file_id = await bucket.upload_from_stream("scan.tiff", io.BytesIO(data))
    out = io.BytesIO()
    await bucket.download_to_stream(file_id, out)
    assert out.getvalue() == data
    await bucket.delete(file_id)
    with pytest.raises(gridfs.errors.NoFile):
        await bucket.download_to_stream(file_id, io.BytesIO())
