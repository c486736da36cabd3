"""Writes on the double answer as MongoDB does: atomic per document, BSON-ordered, size-limited."""

from __future__ import annotations

import datetime as dt
import socket
import struct
from typing import Any

import pytest
from bson import Decimal128, Int64, ObjectId
from pymongo import AsyncMongoClient, ReplaceOne, ReturnDocument, UpdateOne
from pymongo.errors import OperationFailure, WriteError

from reactor.testing import MongoDouble
from reactor.testing.fixtures import mongo_client, mongo_double, mongo_uri

__all__ = ["mongo_client", "mongo_double", "mongo_uri"]  # fixtures used by name below

Doc = dict[str, Any]
NOW = dt.datetime(2024, 5, 1, 12, 0, 0)
CLAIM_UPDATE = {
    "$set": {"status": "running", "lease_owner": "me", "started_at": NOW},
    "$inc": {"fence": 1},
    "$max": {"attempt": 1},
    "$min": {"created_at": NOW},
}


async def test_failing_update_applies_nothing(mongo_client: AsyncMongoClient[Doc]) -> None:
    """An update whose $inc meets a string fails with 14 and leaves its $set unapplied."""
    jobs = mongo_client.app.jobs
    await jobs.insert_one({"_id": 1, "status": "queued", "fence": "seven"})
    with pytest.raises(WriteError) as caught:
        await jobs.update_one({"_id": 1}, CLAIM_UPDATE)
    assert caught.value.code == 14
    assert await jobs.find_one({"_id": 1}) == {"_id": 1, "status": "queued", "fence": "seven"}


async def test_failing_find_and_modify_claims_nothing(mongo_client: AsyncMongoClient[Doc]) -> None:
    """A findAndModify that fails part-way answers 14 and the job stays queued and unowned."""
    jobs = mongo_client.app.jobs
    await jobs.insert_one({"_id": 1, "status": "queued", "attempt": 0, "fence": []})
    with pytest.raises(OperationFailure) as caught:
        await jobs.find_one_and_update({"status": "queued"}, CLAIM_UPDATE)
    assert caught.value.code == 14
    assert await jobs.find_one({"_id": 1}) == {
        "_id": 1,
        "status": "queued",
        "attempt": 0,
        "fence": [],
    }


async def test_min_and_max_compare_across_types_in_bson_order(
    mongo_client: AsyncMongoClient[Doc],
) -> None:
    """$min of a date over a string keeps the string (strings sort first); $max over null sets."""
    jobs = mongo_client.app.jobs
    await jobs.insert_one({"_id": 1, "created_at": "yesterday", "attempt": None})
    after = await jobs.find_one_and_update(
        {"_id": 1}, CLAIM_UPDATE, return_document=ReturnDocument.AFTER
    )
    assert after is not None
    assert after["created_at"] == "yesterday"
    assert after["attempt"] == 1
    await jobs.update_one({"_id": 1}, {"$max": {"created_at": NOW}})
    assert (await jobs.find_one({"_id": 1}) or {})["created_at"] == NOW


async def test_min_and_max_compare_decimals_as_numbers(mongo_client: AsyncMongoClient[Doc]) -> None:
    """Decimal128 meets int and double by value in $max/$min, and sorts among them."""
    coll = mongo_client.app.nums
    await coll.insert_many([{"_id": 1, "v": Decimal128("2.5")}, {"_id": 2, "v": 2}])
    await coll.insert_one({"_id": 3, "v": "text"})
    await coll.update_one({"_id": 1}, {"$max": {"v": 3}})  # 3 > 2.5: replaced
    await coll.update_one({"_id": 2}, {"$min": {"v": Decimal128("1.5")}})  # 1.5 < 2: replaced
    await coll.update_one({"_id": 3}, {"$max": {"v": Decimal128("9")}})  # numbers < strings: kept
    found = {doc["_id"]: doc["v"] async for doc in coll.find()}
    assert found == {1: 3, 2: Decimal128("1.5"), 3: "text"}
    await coll.insert_one({"_id": 4, "v": Decimal128("2.75")})
    ordered = [doc["_id"] async for doc in coll.find().sort("v", -1)]
    assert ordered == [3, 1, 4, 2]


async def test_min_sets_a_missing_field(mongo_client: AsyncMongoClient[Doc]) -> None:
    """$min and $max on an absent field set it, as the reactor's claim relies on."""
    jobs = mongo_client.app.jobs
    await jobs.insert_one({"_id": 1})
    await jobs.update_one({"_id": 1}, {"$min": {"created_at": NOW}, "$max": {"attempt": 1}})
    assert await jobs.find_one({"_id": 1}) == {"_id": 1, "created_at": NOW, "attempt": 1}


async def test_inc_keeps_numeric_types(mongo_client: AsyncMongoClient[Doc]) -> None:
    """$inc adds within int, long, double and decimal as MongoDB does, and rejects a string step."""
    coll = mongo_client.app.nums
    await coll.insert_one({"_id": 1, "i": 1, "l": Int64(1), "d": 1.5, "m": Decimal128("1.1")})
    await coll.update_one({"_id": 1}, {"$inc": {"i": 2, "l": 2, "d": 1, "m": 1}})
    doc = await coll.find_one({"_id": 1})
    assert doc == {"_id": 1, "i": 3, "l": 3, "d": 2.5, "m": Decimal128("2.1")}
    assert doc is not None
    assert isinstance(doc["l"], Int64)
    with pytest.raises(WriteError) as caught:
        await coll.update_one({"_id": 1}, {"$inc": {"i": "1"}})
    assert caught.value.code == 14


async def test_unknown_update_operator_fails_even_without_a_match(
    mongo_client: AsyncMongoClient[Doc],
) -> None:
    """An unknown update operator answers 9 although no document matches the filter."""
    with pytest.raises(WriteError) as caught:
        await mongo_client.app.jobs.update_one({"_id": "nothing"}, {"$frobnicate": {"a": 1}})
    assert caught.value.code == 9


async def test_conflicting_update_paths_answer_40(mongo_client: AsyncMongoClient[Doc]) -> None:
    """Two operators on overlapping paths answer 40 ConflictingUpdateOperators."""
    await mongo_client.app.jobs.insert_one({"_id": 1})
    with pytest.raises(WriteError) as caught:
        await mongo_client.app.jobs.update_one(
            {"_id": 1}, {"$set": {"a.b": 1}, "$unset": {"a": ""}}
        )
    assert caught.value.code == 40


async def test_documents_over_16_mib_are_refused(mongo_client: AsyncMongoClient[Doc]) -> None:
    """An insert over 16 MiB answers 10334, an update growing a document past it 17419."""
    coll = mongo_client.app.big
    with pytest.raises(WriteError) as inserted:
        await coll.insert_one({"x": "a" * (16 * 1024 * 1024)})
    assert inserted.value.code == 10334
    await coll.insert_one({"_id": 1, "x": "a" * (9 * 1024 * 1024)})
    with pytest.raises(WriteError) as updated:
        await coll.update_one({"_id": 1}, {"$set": {"y": "b" * (8 * 1024 * 1024)}})
    assert updated.value.code == 17419
    assert set(await coll.find_one({"_id": 1}) or {}) == {"_id", "x"}


async def test_update_one_and_replace_one_honour_sort(mongo_client: AsyncMongoClient[Doc]) -> None:
    """update_one and replace_one with sort change the first match in that order."""
    coll = mongo_client.app.q
    await coll.insert_many([{"_id": i, "p": i % 3} for i in range(6)])
    await coll.update_one({}, {"$set": {"hit": True}}, sort={"p": -1, "_id": -1})
    await coll.replace_one({"p": 0}, {"p": 0, "replaced": True}, sort={"_id": -1})
    assert [doc["_id"] async for doc in coll.find({"hit": True})] == [5]
    assert [doc["_id"] async for doc in coll.find({"replaced": True})] == [3]


async def test_bulk_updates_honour_sort(mongo_client: AsyncMongoClient[Doc]) -> None:
    """UpdateOne and ReplaceOne in a bulk write carry their sort to the server."""
    coll = mongo_client.app.q
    await coll.insert_many([{"_id": i, "p": i % 2} for i in range(4)])
    await coll.bulk_write(
        [
            UpdateOne({"p": 1}, {"$set": {"u": 1}}, sort={"_id": -1}),
            ReplaceOne({"p": 0}, {"p": 0, "r": 1}, sort={"_id": -1}),
        ]
    )
    assert [doc["_id"] async for doc in coll.find({"u": 1})] == [3]
    assert [doc["_id"] async for doc in coll.find({"r": 1})] == [2]


async def test_find_and_modify_reports_updated_existing(
    mongo_client: AsyncMongoClient[Doc],
) -> None:
    """lastErrorObject carries updatedExisting, spelled as MongoDB spells it."""
    await mongo_client.app.jobs.insert_one({"_id": 1})
    hit = await mongo_client.app.command(
        "findAndModify", "jobs", query={"_id": 1}, update={"$set": {"a": 1}}
    )
    miss = await mongo_client.app.command(
        "findAndModify", "jobs", query={"_id": 2}, update={"$set": {"a": 1}}
    )
    assert hit["lastErrorObject"] == {"n": 1, "updatedExisting": True}
    assert miss["lastErrorObject"] == {"n": 0, "updatedExisting": False}


async def test_upsert_seeds_the_new_document_from_the_filter(
    mongo_client: AsyncMongoClient[Doc],
) -> None:
    """An upsert inserts the filter's equalities, then the update, with _id first."""
    state = mongo_client.app.reactor_state
    await state.update_one({"_id": "jobs_stream", "v": {"$eq": 2}}, {"$set": {"t": 1}}, upsert=True)
    doc = await state.find_one({"_id": "jobs_stream"})
    assert doc == {"_id": "jobs_stream", "v": 2, "t": 1}
    assert next(iter(doc)) == "_id"


async def test_immutable_id_answers_66(mongo_client: AsyncMongoClient[Doc]) -> None:
    """Changing _id with $set or a replacement answers 66 ImmutableField."""
    await mongo_client.app.jobs.insert_one({"_id": 1})
    with pytest.raises(WriteError) as by_set:
        await mongo_client.app.jobs.update_one({"_id": 1}, {"$set": {"_id": 2}})
    with pytest.raises(WriteError) as by_replace:
        await mongo_client.app.jobs.replace_one({"_id": 1}, {"_id": 2})
    assert (by_set.value.code, by_replace.value.code) == (66, 66)


async def test_push_with_each_and_slice_keeps_the_last(mongo_client: AsyncMongoClient[Doc]) -> None:
    """$push with $each and a negative $slice keeps the newest entries, as the requeue does."""
    jobs = mongo_client.app.jobs
    await jobs.insert_one({"_id": 1, "errors": [1, 2, 3]})
    await jobs.update_one({"_id": 1}, {"$push": {"errors": {"$each": [4, 5], "$slice": -3}}})
    assert (await jobs.find_one({"_id": 1}) or {})["errors"] == [3, 4, 5]


async def test_positional_operator_updates_the_matched_element(
    mongo_client: AsyncMongoClient[Doc],
) -> None:
    """``$`` in an update path stands for the array element the filter matched."""
    coll = mongo_client.app.items
    await coll.insert_one({"_id": 1, "lines": [{"sku": "a", "n": 1}, {"sku": "b", "n": 1}]})
    await coll.update_one({"_id": 1, "lines.sku": "b"}, {"$inc": {"lines.$.n": 5}})
    assert (await coll.find_one({"_id": 1}) or {})["lines"] == [
        {"sku": "a", "n": 1},
        {"sku": "b", "n": 6},
    ]


def test_a_message_over_48_mb_closes_its_connection(mongo_double: MongoDouble) -> None:
    """A message announcing over maxMessageSizeBytes (48 MB) is refused by closing the socket."""
    header = struct.pack("<iiii", 48_000_001, 1, 0, 2013)
    with socket.create_connection(("127.0.0.1", mongo_double.port), timeout=10) as sock:
        sock.sendall(header)
        assert sock.recv(1) == b""
    with socket.create_connection(("127.0.0.1", mongo_double.port), timeout=10) as other:
        other.sendall(struct.pack("<iiii", 48_000_000, 2, 0, 2013))
        other.settimeout(0.5)
        with pytest.raises(TimeoutError):  # a message of exactly 48 MB is awaited, not refused
            other.recv(1)


async def test_replacement_upsert_keeps_the_replacement_id(
    mongo_client: AsyncMongoClient[Doc],
) -> None:
    """An upserted replacement keeps its own _id, even null; without one it gets a new one."""
    coll, nulls = mongo_client.app.ups, mongo_client.app.nulls
    await coll.replace_one({"a": 1}, {"_id": 1}, upsert=True)
    await coll.replace_one({"a": 2}, {"a": 2}, upsert=True)
    await nulls.replace_one({}, {"_id": None}, upsert=True)
    assert await nulls.count_documents({"_id": {"$type": "null"}}) == 1
    assert await coll.find_one({"_id": 1}) == {"_id": 1}
    assert isinstance((await coll.find_one({"a": 2}) or {})["_id"], ObjectId)


async def test_pipeline_updates_keep_the_id(mongo_client: AsyncMongoClient[Doc]) -> None:
    """An update pipeline that replaces the root or unsets fields keeps the document's _id."""
    coll = mongo_client.app.pipes
    await coll.insert_one({"_id": 1, "t": {"u": 1}, "x": 2})
    await coll.update_one({"_id": 1}, [{"$replaceWith": "$t"}, {"$set": {"v": 3}}])
    assert await coll.find_one({"_id": 1}) == {"_id": 1, "u": 1, "v": 3}
    await coll.update_one({"_id": 1}, [{"$unset": ["u"]}])
    assert await coll.find_one({"_id": 1}) == {"_id": 1, "v": 3}


async def test_update_pipelines_set_fields_a_path_cannot_name(
    mongo_client: AsyncMongoClient[Doc],
) -> None:
    """$setField, $getField and $unsetField write and read dollar-prefixed and dotted names."""
    coll = mongo_client.app.fields
    await coll.insert_one({"_id": 1, "foo": {}, "old": 1})
    await coll.update_one(
        {"_id": 1},
        [
            {"$set": {"foo": {"$setField": {"field": "a.b", "value": 1, "input": "$foo"}}}},
            {"$replaceWith": {"$unsetField": {"field": "old", "input": "$$ROOT"}}},
            {
                "$replaceWith": {
                    "$setField": {"field": {"$literal": "$d"}, "value": 2, "input": "$$ROOT"}
                }
            },
            {"$set": {"copy": {"$getField": {"field": "a.b", "input": "$foo"}}}},
        ],
    )
    assert await coll.find_one({"_id": 1}) == {"_id": 1, "foo": {"a.b": 1}, "$d": 2, "copy": 1}


@pytest.mark.parametrize(("stage", "code"), [({"$group": {"_id": 1}}, 72), ({"$nope": {}}, 40324)])
async def test_update_pipeline_stage_outside_an_update_is_refused(
    mongo_client: AsyncMongoClient[Doc], stage: Doc, code: int
) -> None:
    """An update pipeline refuses a stage it cannot run with 72, an unknown stage with 40324."""
    jobs = mongo_client.app.jobs
    await jobs.insert_one({"_id": 1})
    with pytest.raises(WriteError) as caught:
        await jobs.update_one({"_id": 1}, [stage])
    assert caught.value.code == code


async def test_changed_id_answers_immutable_field(mongo_client: AsyncMongoClient[Doc]) -> None:
    """An update that would change _id answers 66 with MongoDB's code name, ImmutableField."""
    jobs = mongo_client.app.jobs
    await jobs.insert_one({"_id": 1})
    with pytest.raises(OperationFailure) as caught:
        await jobs.find_one_and_update({"_id": 1}, {"$set": {"_id": 2}})
    assert caught.value.code == 66
    assert caught.value.details is not None
    assert caught.value.details["codeName"] == "ImmutableField"
