"""Collections and indexes on the double persist as on MongoDB, empty or not."""

from __future__ import annotations

from typing import Any

import pytest
from pymongo import ASCENDING, DESCENDING, AsyncMongoClient, IndexModel
from pymongo.errors import OperationFailure

from reactor.testing.fixtures import mongo_client, mongo_double, mongo_uri

__all__ = ["mongo_client", "mongo_double", "mongo_uri"]  # fixtures used by name below

Doc = dict[str, Any]


async def test_emptied_collection_is_still_listed(mongo_client: AsyncMongoClient[Doc]) -> None:
    """Deleting every document leaves the collection and its indexes in place."""
    jobs = mongo_client.app.jobs
    await jobs.create_index("job_id", unique=True)
    await jobs.insert_one({"job_id": "j1"})
    await jobs.delete_many({})
    assert await mongo_client.app.list_collection_names() == ["jobs"]
    assert list(await jobs.index_information()) == ["_id_", "job_id_1"]


async def test_create_on_an_existing_empty_collection_answers_48(
    mongo_client: AsyncMongoClient[Doc],
) -> None:
    """create fails with 48 NamespaceExists for a collection that exists but holds nothing."""
    await mongo_client.app.create_collection("empty")
    with pytest.raises(OperationFailure) as caught:
        await mongo_client.app.command("create", "empty")
    assert caught.value.code == 48


async def test_drop_of_an_empty_collection_is_a_change_event(
    mongo_client: AsyncMongoClient[Doc],
) -> None:
    """Dropping an empty collection removes it and ends a stream on it with drop, invalidate."""
    coll = mongo_client.app.empty
    await mongo_client.app.create_collection("empty")
    async with await coll.watch() as stream:
        reply = await mongo_client.app.command("drop", "empty")
        kinds = [(await stream.next())["operationType"] for _ in range(2)]
    assert reply["ns"] == "app.empty"
    assert kinds == ["drop", "invalidate"]
    assert await mongo_client.app.list_collection_names() == []


async def test_identical_create_indexes_is_a_no_op(mongo_client: AsyncMongoClient[Doc]) -> None:
    """Creating the reactor's indexes twice changes nothing and says all exist."""
    jobs = mongo_client.app.jobs
    models = [
        IndexModel(
            [("job_id", ASCENDING)],
            name="job_id_unique",
            unique=True,
            partialFilterExpression={"job_id": {"$type": "string"}},
        ),
        IndexModel(
            [("status", ASCENDING), ("priority", DESCENDING), ("_id", ASCENDING)],
            name="claim_order",
        ),
    ]
    await jobs.create_indexes(models)
    again = await mongo_client.app.command(
        "createIndexes", "jobs", indexes=[model.document for model in models]
    )
    assert (again["numIndexesBefore"], again["numIndexesAfter"]) == (3, 3)
    assert again["note"] == "all indexes already exist"
    info = await jobs.index_information()
    assert info["job_id_unique"]["partialFilterExpression"] == {"job_id": {"$type": "string"}}


async def test_another_key_under_an_existing_name_answers_86(
    mongo_client: AsyncMongoClient[Doc],
) -> None:
    """Reusing an index name for another key pattern fails with 86 IndexKeySpecsConflict."""
    await mongo_client.app.jobs.create_index("a", name="shared")
    with pytest.raises(OperationFailure) as caught:
        await mongo_client.app.jobs.create_index("b", name="shared")
    assert caught.value.code == 86


async def test_the_same_key_under_another_name_answers_85(
    mongo_client: AsyncMongoClient[Doc],
) -> None:
    """Creating an existing key pattern under a new name fails with 85 IndexOptionsConflict."""
    await mongo_client.app.jobs.create_index("a", name="first")
    with pytest.raises(OperationFailure) as caught:
        await mongo_client.app.jobs.create_index("a", name="second")
    assert caught.value.code == 85


async def test_unique_index_treats_missing_fields_as_null(
    mongo_client: AsyncMongoClient[Doc],
) -> None:
    """A plain unique index admits one document without the field; a partial one any number."""
    plain, partial = mongo_client.app.plain, mongo_client.app.partial
    await plain.create_index("k", unique=True)
    await partial.create_index("k", unique=True, partialFilterExpression={"k": {"$type": "string"}})
    await plain.insert_one({"_id": 1})
    with pytest.raises(OperationFailure) as caught:
        await plain.insert_one({"_id": 2})
    assert caught.value.code == 11000
    await partial.insert_many([{"_id": 1}, {"_id": 2}, {"_id": 3, "k": "a"}])
    with pytest.raises(OperationFailure):
        await partial.insert_one({"_id": 4, "k": "a"})


async def test_hint_names_an_index_or_fails(mongo_client: AsyncMongoClient[Doc]) -> None:
    """A find hinted to an existing index answers from it; an unknown hint answers 2."""
    jobs = mongo_client.app.jobs
    await jobs.create_index("n", name="by_n")
    await jobs.insert_many([{"_id": i, "n": -i} for i in range(3)])
    hinted = await jobs.find({"n": {"$lte": 0}}).hint("by_n").to_list()
    assert [doc["_id"] for doc in hinted] == [2, 1, 0]
    with pytest.raises(OperationFailure) as caught:
        await jobs.find({}).hint("missing").to_list()
    assert caught.value.code == 2


async def test_geo_and_hashed_indexes_are_listed_but_hold_no_keys(
    mongo_client: AsyncMongoClient[Doc],
) -> None:
    """2d, 2dsphere and hashed indexes are created and listed; queries ignore them."""
    coll = mongo_client.app.places
    await coll.insert_one({"_id": 1, "loc": [1, 2], "a": 5})
    names = [
        await coll.create_index([("loc", "2d")]),
        await coll.create_index([("geo", "2dsphere")]),
        await coll.create_index([("a", "hashed")]),
    ]
    info = await coll.index_information()
    assert [info[name]["key"] for name in names] == [
        [("loc", "2d")],
        [("geo", "2dsphere")],
        [("a", "hashed")],
    ]
    assert [doc["_id"] async for doc in coll.find({"a": 5})] == [1]
