"""updateDescription as MongoDB 6+ reports it, seen through a real PyMongo change stream."""

from __future__ import annotations

from typing import Any

import pytest
from pymongo import AsyncMongoClient

Doc = dict[str, Any]


async def _describe(
    client: AsyncMongoClient[Doc], doc: Doc, update: Any, *, expanded: bool = False
) -> Doc:
    """The updateDescription of ``update`` applied to a freshly inserted ``doc``."""
    jobs = client.app.jobs
    await jobs.insert_one(doc)
    pipeline = [{"$match": {"operationType": "update"}}]
    async with await jobs.watch(pipeline, show_expanded_events=expanded or None) as stream:
        await jobs.update_one({"_id": doc["_id"]}, update)
        event = await stream.next()
    description: Doc = event["updateDescription"]
    return description


@pytest.mark.parametrize(
    ("doc", "update", "updated", "removed"),
    [
        ({"_id": 1, "a": {"b": 1, "c": 1}}, {"$set": {"a.b": 2}}, {"a.b": 2}, []),
        ({"_id": 1, "a": {"b": 1}}, {"$set": {"a": {"b": 1, "c": 2}}}, {"a": {"b": 1, "c": 2}}, []),
        ({"_id": 1, "a": {}}, {"$set": {"a.b.c": 1}}, {"a.b": {"c": 1}}, []),
        ({"_id": 1, "a": {"b": 1, "c": 1}}, {"$unset": {"a.c": ""}}, {}, ["a.c"]),
        ({"_id": 1, "a": {"n": 1}}, {"$inc": {"a.n": 2}}, {"a.n": 3}, []),
        (
            {"_id": 1, "arr": [1, 2]},
            {"$push": {"arr": {"$each": [3, 4]}}},
            {"arr.2": 3, "arr.3": 4},
            [],
        ),
        ({"_id": 1, "arr": [1, 2, 3]}, {"$pop": {"arr": 1}}, {"arr": [1, 2]}, []),
        ({"_id": 1, "arr": [1, 2, 3]}, {"$pull": {"arr": 2}}, {"arr": [1, 3]}, []),
        ({"_id": 1, "arr": [{"x": 1}, {"x": 2}]}, {"$set": {"arr.1.x": 5}}, {"arr.1.x": 5}, []),
        ({"_id": 1, "old": 1}, {"$rename": {"old": "new"}}, {"new": 1}, ["old"]),
        ({"_id": 1, "n": 1}, {"$set": {"n": 1.0}}, {"n": 1.0}, []),
    ],
)
async def test_modifier_updates_report_the_paths_they_touched(
    client: AsyncMongoClient[Doc], doc: Doc, update: Doc, updated: Doc, removed: list[str]
) -> None:
    """Each operator reports what MongoDB's oplog diff records: dotted paths, appends, arrays."""
    description = await _describe(client, doc, update)
    assert description == {
        "updatedFields": updated,
        "removedFields": removed,
        "truncatedArrays": [],
    }


async def test_types_count_in_updated_fields(client: AsyncMongoClient[Doc]) -> None:
    """Setting 1.0 over 1 is a change, as MongoDB compares values binary-exactly."""
    description = await _describe(client, {"_id": 1, "n": 1}, {"$set": {"n": 1.0}})
    assert isinstance(description["updatedFields"]["n"], float)


async def test_pipeline_update_reports_a_truncated_array(client: AsyncMongoClient[Doc]) -> None:
    """A pipeline $set of a shorter array appears in truncatedArrays, not updatedFields."""
    doc = {"_id": 1, "a": 1, "array": ["foo", {"a": "bar"}, 1, 2, 3]}
    update = [{"$set": {"array": ["foo", {"a": "bar"}]}}]
    description = await _describe(client, doc, update)
    assert description == {
        "updatedFields": {},
        "removedFields": [],
        "truncatedArrays": [{"field": "array", "newSize": 2}],
    }


async def test_pipeline_update_descends_into_changed_documents(
    client: AsyncMongoClient[Doc],
) -> None:
    """A pipeline update reports a nested change by its dotted path."""
    doc = {"_id": 1, "a": {"b": 1, "c": "x" * 50}}
    description = await _describe(client, doc, [{"$set": {"a.b": 2}}])
    assert description["updatedFields"] == {"a.b": 2}


async def test_disambiguated_paths_need_show_expanded_events(client: AsyncMongoClient[Doc]) -> None:
    """Without showExpandedEvents there is no disambiguatedPaths, even for an ambiguous path."""
    description = await _describe(client, {"_id": 1, "a": {"1": 1}}, {"$set": {"a.1": 2}})
    assert "disambiguatedPaths" not in description


async def test_numeric_field_names_are_disambiguated(client: AsyncMongoClient[Doc]) -> None:
    """A numeric field name is listed with its components; array indices stay integers."""
    doc = {"_id": 1, "a": [{"1": 1}], "plain": 0}
    update = {"$set": {"a.0.1": 2, "plain": 1}}
    description = await _describe(client, doc, update, expanded=True)
    assert description["updatedFields"] == {"a.0.1": 2, "plain": 1}
    assert description["disambiguatedPaths"] == {"a.0.1": ["a", 0, "1"]}


async def test_unambiguous_paths_give_an_empty_disambiguation(
    client: AsyncMongoClient[Doc],
) -> None:
    """With showExpandedEvents and nothing ambiguous, disambiguatedPaths is present and empty."""
    doc = {"_id": 1, "arr": [1]}
    description = await _describe(client, doc, {"$push": {"arr": 2}}, expanded=True)
    assert description["updatedFields"] == {"arr.1": 2}
    assert description["disambiguatedPaths"] == {}
