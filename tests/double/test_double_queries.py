"""Query semantics on the double: null and missing, arrays, type bracketing, BSON order."""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import pytest
from bson import Regex, Timestamp
from pymongo import ASCENDING, AsyncMongoClient
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import OperationFailure

from reactor.testing.fixtures import mongo_client, mongo_double, mongo_uri

__all__ = ["mongo_client", "mongo_double", "mongo_uri"]  # fixtures used by name below

Doc = dict[str, Any]
WHEN = dt.datetime(2024, 1, 1)
DOCS: list[Doc] = [
    {"_id": 1, "v": None},
    {"_id": 2},
    {"_id": 3, "v": [1, "a"]},
    {"_id": 4, "v": True},
    {"_id": 5, "v": 1.0},
    {"_id": 6, "v": float("nan")},
    {"_id": 7, "v": Timestamp(1, 1)},
    {"_id": 8, "v": Regex("x")},
    {"_id": 9, "v": WHEN},
    {"_id": 10, "v": "b"},
]
CASES = [
    ({"v": None}, [1, 2]),
    ({"v": 1}, [3, 5]),
    ({"v": True}, [4]),
    ({"v": {"$gt": 0}}, [3, 5]),
    ({"v": {"$gte": "a"}}, [3, 10]),
    ({"v": {"$lt": WHEN + dt.timedelta(days=1)}}, [9]),
    ({"v": float("nan")}, [6]),
    ({"v": {"$type": ["regex", "timestamp", "string"]}}, [3, 7, 8, 10]),
    ({"v": {"$exists": False}}, [2]),
    ({"v": {"$in": [None, 1]}}, [1, 2, 3, 5]),
    ({"v": {"$nin": [None, 1]}}, [4, 6, 7, 8, 9, 10]),
    ({"v": {"$ne": 1}}, [1, 2, 4, 6, 7, 8, 9, 10]),
    ({"v": {"$not": {"$gt": 0}}}, [1, 2, 4, 6, 7, 8, 9, 10]),
    ({"v": {"$size": 2}}, [3]),
    ({"v": {"$elemMatch": {"$eq": "a"}}}, [3]),
    ({"v": {"$regex": "^b"}}, [10]),
]


@pytest.fixture
async def values(mongo_client: AsyncMongoClient[Doc]) -> AsyncCollection[Doc]:
    coll = mongo_client.app.values
    await coll.insert_many([dict(doc) for doc in DOCS])
    return coll


@pytest.mark.parametrize(("query", "expected"), CASES, ids=[str(c[0]) for c in CASES])
async def test_filters_match_as_mongodb_does(
    values: AsyncCollection[Doc], query: Doc, expected: list[int]
) -> None:
    """Each filter matches exactly the documents MongoDB's matching rules select."""
    assert [doc["_id"] async for doc in values.find(query).sort("_id", ASCENDING)] == expected


@pytest.mark.parametrize(("query", "expected"), CASES, ids=[str(c[0]) for c in CASES])
async def test_indexed_filters_match_the_same_documents(
    values: AsyncCollection[Doc], query: Doc, expected: list[int]
) -> None:
    """With an index on the field, each filter still matches exactly the same documents."""
    await values.create_index("v")
    assert [doc["_id"] async for doc in values.find(query).sort("_id", ASCENDING)] == expected


async def test_sort_orders_across_types_in_bson_order(values: AsyncCollection[Doc]) -> None:
    """Sorting mixed types follows BSON order; an array sorts by its smallest element."""
    await values.delete_many({"_id": {"$in": [3, 6]}})
    ordered = [doc["_id"] async for doc in values.find().sort([("v", 1), ("_id", 1)])]
    assert ordered == [1, 2, 5, 10, 4, 9, 7, 8]


async def test_distinct_returns_values_in_bson_order(values: AsyncCollection[Doc]) -> None:
    """distinct unwinds arrays, merges equal numbers and returns the values in BSON order."""
    found = await values.distinct("v")
    assert found[0] is None
    assert math.isnan(found[1])
    assert found[2:] == [1, "a", "b", True, WHEN, Timestamp(1, 1), Regex("x")]


async def test_distinct_with_collation_answers_238(values: AsyncCollection[Doc]) -> None:
    """distinct with a collation is refused with 238 rather than run without it."""
    with pytest.raises(OperationFailure) as caught:
        await values.database.command("distinct", "values", key="v", collation={"locale": "fr"})
    assert caught.value.code == 238


async def test_let_answers_238(values: AsyncCollection[Doc]) -> None:
    """A find with let variables is refused with 238 NotImplemented."""
    with pytest.raises(OperationFailure) as caught:
        await values.find({}, let={"x": 1}).to_list()
    assert caught.value.code == 238


async def test_expr_compares_fields(mongo_client: AsyncMongoClient[Doc]) -> None:
    """$expr evaluates an aggregation expression against each document."""
    coll = mongo_client.app.pairs
    await coll.insert_many([{"_id": 1, "a": 1, "b": 2}, {"_id": 2, "a": 3, "b": 2}])
    assert [doc["_id"] async for doc in coll.find({"$expr": {"$gt": ["$a", "$b"]}})] == [2]


async def test_expr_with_an_undefined_variable_fails_to_parse(
    mongo_client: AsyncMongoClient[Doc],
) -> None:
    """$$name that no $let, $map, $filter or $reduce defines fails with 17276, even on no data."""
    with pytest.raises(OperationFailure) as caught:
        await mongo_client.app.empty.find_one({"$expr": {"$eq": ["$_id", "$$id2"]}})
    assert caught.value.code == 17276
    assert "Use of undefined variable: id2" in str(caught.value)


async def test_expr_variables_bound_inside_the_expression_are_defined(
    mongo_client: AsyncMongoClient[Doc],
) -> None:
    """System variables, $let's vars and $filter's default $$this evaluate as usual."""
    coll = mongo_client.app.vars
    await coll.insert_many([{"_id": 1, "a": [1, 2]}, {"_id": 2, "a": [5]}])
    short = {"$let": {"vars": {"limit": 2}, "in": {"$lt": [{"$size": "$a"}, "$$limit"]}}}
    above_one = {"$filter": {"input": "$a", "cond": {"$gt": ["$$this", 1]}}}
    clauses = [short, {"$gt": [{"$size": above_one}, 0]}, {"$eq": ["$$ROOT._id", "$_id"]}]
    found = await coll.find({"$expr": {"$and": clauses}}).to_list()
    assert [doc["_id"] for doc in found] == [2]


async def test_dotted_paths_reach_into_arrays_of_documents(
    mongo_client: AsyncMongoClient[Doc],
) -> None:
    """``a.b`` matches inside array elements, and null matches an element lacking ``b``."""
    coll = mongo_client.app.nested
    await coll.insert_many([{"_id": 1, "a": [{"b": 1}, {"c": 1}]}, {"_id": 2, "a": [{"b": 2}]}])
    assert [doc["_id"] async for doc in coll.find({"a.b": 2})] == [2]
    assert [doc["_id"] async for doc in coll.find({"a.b": None})] == [1]
    assert [doc["_id"] async for doc in coll.find({"a.b": {"$exists": True}})] == [1, 2]


async def test_projection_includes_and_excludes_nested_fields(
    mongo_client: AsyncMongoClient[Doc],
) -> None:
    """Inclusion keeps the named (dotted) fields and _id; exclusion drops them."""
    coll = mongo_client.app.shapes
    await coll.insert_one({"_id": 1, "a": {"b": 1, "c": 2}, "d": [{"e": 1, "f": 2}], "g": 3})
    included = await coll.find_one({}, {"a.b": 1, "d.e": 1})
    excluded = await coll.find_one({}, {"a.c": 0, "g": 0, "_id": 0})
    assert included == {"_id": 1, "a": {"b": 1}, "d": [{"e": 1}]}
    assert excluded == {"a": {"b": 1}, "d": [{"e": 1, "f": 2}]}


async def test_merged_index_scans_keep_the_requested_order(
    mongo_client: AsyncMongoClient[Doc],
) -> None:
    """An $in over two fields of a compound index, sorted by the next one, comes back in that
    order even when the point prefixes have different lengths (null and a number)."""
    jobs = mongo_client.q.jobs
    await jobs.create_index([("status", 1), ("priority", -1), ("_id", 1)])
    await jobs.insert_many([{"_id": 1, "priority": 0}, {"_id": 2, "priority": 1}, {"_id": 3}])
    await jobs.insert_many([{"_id": 4, "priority": 0}, {"_id": 5, "status": "queued"}])
    query = {"status": {"$in": [None, "queued"]}, "priority": {"$in": [None, 0]}}
    found = [doc["_id"] async for doc in jobs.find(query).sort("_id", ASCENDING)]
    assert found == [1, 3, 4, 5]
