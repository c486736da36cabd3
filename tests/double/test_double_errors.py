"""Commands the double refuses or cannot satisfy answer MongoDB-shaped errors, never hang."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from bson import Int64
from pymongo import AsyncMongoClient
from pymongo.errors import OperationFailure

from reactor.testing.fixtures import mongo_client, mongo_double, mongo_uri

__all__ = ["mongo_client", "mongo_double", "mongo_uri"]  # fixtures used by name below

Doc = dict[str, Any]


@pytest.fixture
async def client(mongo_client: AsyncMongoClient[Doc]) -> AsyncMongoClient[Doc]:
    """The shared client, with one document in ``app.jobs`` so the collection exists."""
    await mongo_client.app.jobs.insert_one({"_id": 1, "a": [1, 2], "k": "x"})
    return mongo_client


CASES = [
    ({"getMore": Int64(12345), "collection": "jobs"}, 43),
    ({"listIndexes": "missing"}, 26),
    ({"dropIndexes": "missing", "index": "*"}, 26),
    ({"dropIndexes": "jobs", "index": "nope_1"}, 27),
    ({"dropIndexes": "jobs", "index": {"nope": 1}}, 27),
    ({"dropIndexes": "jobs", "index": "_id_"}, 72),
    (
        {"createIndexes": "jobs", "indexes": [{"key": {"k": "text"}, "name": "t", "weights": {}}]},
        238,
    ),
    ({"createIndexes": "jobs", "indexes": [{"name": "no_key"}]}, 9),
    ({"create": "capped", "capped": True, "size": 1000}, 238),
    ({"create": "jobs"}, 48),
    ({"find": "jobs", "collation": {"locale": "fr"}}, 238),
    ({"find": "jobs", "tailable": True}, 238),
    ({"find": "jobs", "sort": [1]}, 14),
    ({"find": "jobs", "batchSize": -1}, 2),
    ({"aggregate": "jobs", "pipeline": [{"$match": {}}]}, 9),
    ({"aggregate": "jobs", "pipeline": {}, "cursor": {}}, 14),
    (
        {"aggregate": "jobs", "pipeline": [{"$match": {}}, {"$changeStream": {}}], "cursor": {}},
        40602,
    ),
    ({"aggregate": 1, "pipeline": [{"$match": {}}], "cursor": {}}, 73),
    ({"aggregate": 1, "pipeline": [{"$listLocalSessions": {}}], "cursor": {}}, 238),
    ({"aggregate": "jobs", "pipeline": [{"$changeStream": {"nope": 1}}], "cursor": {}}, 40415),
    (
        {"aggregate": "jobs", "pipeline": [{"$changeStream": {"fullDocument": "x"}}], "cursor": {}},
        2,
    ),
    ({"aggregate": "jobs", "pipeline": [{"$changeStream": 5}], "cursor": {}}, 40573),
    ({"aggregate": "jobs", "pipeline": [{"$changeStream": {}}, {"$group": {}}], "cursor": {}}, 20),
    (
        {"aggregate": "jobs", "pipeline": [{"$changeStream": {}}, {"$nope": {}}], "cursor": {}},
        40324,
    ),
    ({"aggregate": "jobs", "pipeline": [{"$changeStream": {}}, {"$redact": 1}], "cursor": {}}, 238),
    ({"aggregate": "jobs", "pipeline": [{"$changeStream": {}}, {}], "cursor": {}}, 40323),
    (
        {
            "aggregate": "jobs",
            "pipeline": [{"$changeStream": {"startAtOperationTime": 5}}],
            "cursor": {},
        },
        14,
    ),
    (
        {
            "aggregate": "jobs",
            "pipeline": [{"$changeStream": {}}, {"$project": {"a": 1, "b": 0}}],
            "cursor": {},
        },
        31254,
    ),
    (
        {
            "aggregate": "jobs",
            "pipeline": [{"$changeStream": {"allChangesForCluster": True}}],
            "cursor": {},
        },
        40575,
    ),
    ({"findAndModify": "jobs", "query": {}}, 9),
    ({"findAndModify": "jobs", "remove": True, "update": {"$set": {"a": 1}}}, 9),
    ({"findAndModify": "jobs", "update": {"$set": {"a.$[e]": 1}}, "arrayFilters": [{"e": 1}]}, 238),
    ({"distinct": "jobs", "key": 5}, 14),
    ({"find": ""}, 73),
    ({"commitTransaction": 1}, 20),
]


@pytest.mark.parametrize(("command", "code"), CASES, ids=[str(c[0])[:60] for c in CASES])
async def test_refused_commands_answer_their_error_code(
    client: AsyncMongoClient[Doc], command: Doc, code: int
) -> None:
    """Each malformed or unsupported command fails at once with MongoDB's code for it."""
    with pytest.raises(OperationFailure) as caught:
        await asyncio.wait_for(client.app.command(command), 5)
    assert caught.value.code == code


async def test_admin_database_change_stream_is_refused(client: AsyncMongoClient[Doc]) -> None:
    """A change stream on the admin database without allChangesForCluster fails with 73."""
    with pytest.raises(OperationFailure) as caught:
        await client.admin.command(
            {"aggregate": 1, "pipeline": [{"$changeStream": {}}], "cursor": {}}
        )
    assert caught.value.code == 73


async def test_write_batch_errors_stop_ordered_and_continue_unordered(
    client: AsyncMongoClient[Doc],
) -> None:
    """An ordered update batch stops at its first error; an unordered one runs every update."""
    bad = {"q": {"_id": 1}, "u": {"$set": {"a.$[e]": 0}}, "arrayFilters": [{"e": 1}]}
    good = {"q": {"_id": 1}, "u": {"$set": {"k": "y"}}}
    ordered = await client.app.command({"update": "jobs", "updates": [bad, good]})
    unordered = await client.app.command(
        {"update": "jobs", "updates": [bad, good], "ordered": False}
    )
    assert [e["code"] for e in ordered["writeErrors"]] == [238]
    assert ordered["n"] == 0
    assert unordered["n"] == 1
    assert (await client.app.jobs.find_one({"_id": 1}) or {})["k"] == "y"


async def test_replacement_with_multi_is_rejected(client: AsyncMongoClient[Doc]) -> None:
    """A replacement-style update with multi: true is a write error with code 9."""
    reply = await client.app.command(
        {"update": "jobs", "updates": [{"q": {}, "u": {"k": "z"}, "multi": True}]}
    )
    assert reply["writeErrors"][0]["code"] == 9


async def test_delete_limit_one_removes_a_single_match(client: AsyncMongoClient[Doc]) -> None:
    """delete with limit 1 removes one matching document, limit 0 removes them all."""
    await client.app.jobs.insert_many([{"k": "x"}, {"k": "x"}])
    one = await client.app.command({"delete": "jobs", "deletes": [{"q": {"k": "x"}, "limit": 1}]})
    rest = await client.app.command({"delete": "jobs", "deletes": [{"q": {"k": "x"}, "limit": 0}]})
    assert (one["n"], rest["n"]) == (1, 2)


async def test_index_build_over_duplicates_fails(client: AsyncMongoClient[Doc]) -> None:
    """A unique index over existing duplicates fails with 11000 and is not created."""
    await client.app.jobs.insert_one({"k": "x"})
    with pytest.raises(OperationFailure) as caught:
        await client.app.jobs.create_index("k", unique=True)
    assert caught.value.code == 11000
    assert list(await client.app.jobs.index_information()) == ["_id_"]


async def test_conflicting_index_options_fail(client: AsyncMongoClient[Doc]) -> None:
    """Re-creating an index name with other options fails with 85 IndexOptionsConflict (sparse
    would be another signature: 86, see test_double_index_conflicts)."""
    await client.app.jobs.create_index("k", name="k")
    with pytest.raises(OperationFailure) as caught:
        await client.app.jobs.create_index("k", name="k", expireAfterSeconds=60)
    assert caught.value.code == 85


async def test_what_mongomock_lacks_answers_238_in_commands_and_writes(
    client: AsyncMongoClient[Doc],
) -> None:
    """mongomock's NotImplementedError becomes code 238, as a command error and as a write error."""
    with pytest.raises(OperationFailure) as caught:
        await client.app.jobs.find_one({"$where": "true"})
    assert caught.value.code == 238
    assert "not supported by the mongo-reactor test double" in str(caught.value)
    reply = await client.app.command(
        "update", "jobs", updates=[{"q": {"$where": "true"}, "u": {"$set": {"k": "y"}}}]
    )
    assert reply["writeErrors"][0]["code"] == 238


@pytest.mark.parametrize("name", ["find", "delete", "update", "findAndModify", "aggregate"])
async def test_let_is_refused_by_every_command_that_takes_it(
    client: AsyncMongoClient[Doc], name: str
) -> None:
    """Each command with let answers 238 naming let, rather than mis-evaluating $$ variables."""
    statements: dict[str, Doc] = {
        "find": {"filter": {}},
        "delete": {"deletes": [{"q": {"$expr": {"$eq": ["$_id", "$$id"]}}, "limit": 0}]},
        "update": {"updates": [{"q": {}, "u": {"$set": {"k": "$$v"}}}]},
        "findAndModify": {"query": {}, "update": {"$set": {"k": 1}}},
        "aggregate": {"pipeline": [], "cursor": {}},
    }
    command = {name: "jobs", **statements[name], "let": {"id": 1, "v": 2}}
    with pytest.raises(OperationFailure) as caught:
        await client.app.command(command)
    assert caught.value.code == 238
    assert "with let" in str(caught.value)
