"""``$documents``, ``$replaceWith: {$literal}`` and ``$switch`` on the double, as on MongoDB."""

from __future__ import annotations

from typing import Any

import pytest
from pymongo import AsyncMongoClient
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import OperationFailure

Doc = dict[str, Any]


@pytest.fixture
def db(client: AsyncMongoClient[Doc]) -> AsyncDatabase[Doc]:
    return client.app


async def run(source: AsyncCollection[Doc] | AsyncDatabase[Doc], pipeline: list[Doc]) -> list[Doc]:
    cursor = await source.aggregate(pipeline)
    return await cursor.to_list()


async def code_of(source: AsyncCollection[Doc] | AsyncDatabase[Doc], pipeline: list[Doc]) -> int:
    """The error code of an aggregate that must fail."""
    with pytest.raises(OperationFailure) as caught:
        await run(source, pipeline)
    return int(caught.value.code or 0)


async def test_documents_feed_the_rest_of_a_database_pipeline(db: AsyncDatabase[Doc]) -> None:
    """aggregate: 1 with $documents runs later stages on them ("$a" in them reads no document)."""
    pipeline = [
        {"$documents": [{"a": 1}, {"a": 2}, {"a": 3, "b": "$a"}]},
        {"$match": {"a": {"$gte": 2}}},
        {"$set": {"twice": {"$multiply": ["$a", 2]}}},
    ]
    assert await run(db, pipeline) == [{"a": 2, "twice": 4}, {"a": 3, "twice": 6}]


async def test_documents_and_merge_report_the_duplicate_key(db: AsyncDatabase[Doc]) -> None:
    """$documents into $merge with whenMatched fail exposes keyPattern and keyValue (11000)."""
    await db.test.insert_many([{"_id": 1, "x": 1}, {"_id": 2, "x": 1}])
    with pytest.raises(OperationFailure) as caught:
        await run(
            db, [{"$documents": [{"_id": 2}]}, {"$merge": {"into": "test", "whenMatched": "fail"}}]
        )
    assert caught.value.code == 11000
    assert caught.value.details is not None
    assert caught.value.details["keyPattern"] == {"_id": 1}
    assert caught.value.details["keyValue"] == {"_id": 2}


@pytest.mark.parametrize(
    ("pipeline", "code"),
    [
        ([], 73),  # {aggregate: 1} is not valid for an empty pipeline
        ([{"$match": {}}], 73),  # a collection is required
        ([{"$documents": 5}], 5858203),  # an array is expected
        ([{"$documents": [1]}], 40228),  # each element must be an object
        ([{"$listLocalSessions": {}}], 238),  # a collectionless stage the double lacks
    ],
)
async def test_database_pipelines_answer_mongodbs_codes(
    db: AsyncDatabase[Doc], pipeline: list[Doc], code: int
) -> None:
    """aggregate: 1 needs a collectionless first stage and $documents an array of objects."""
    assert await code_of(db, pipeline) == code


@pytest.mark.parametrize(
    ("pipeline", "code"),
    [([{"$documents": []}], 73), ([{"$match": {}}, {"$documents": []}], 40602)],
)
async def test_documents_is_a_first_stage_of_database_pipelines_only(
    db: AsyncDatabase[Doc], pipeline: list[Doc], code: int
) -> None:
    """On a collection $documents answers 73, after the first stage 40602."""
    assert await code_of(db.jobs, pipeline) == code


async def test_replace_with_a_literal_keeps_dollar_strings(db: AsyncDatabase[Doc]) -> None:
    """$replaceWith {$literal: doc} yields doc as it is, strings that look like paths included."""
    await db.jobs.insert_one({"_id": 1, "x": 5})
    result = {"job_id": 1, "out": {"path": "$x", "var": "$$ROOT"}, "list": ["$x"]}
    assert await run(db.jobs, [{"$replaceWith": {"$literal": result}}]) == [result]


async def test_switch_takes_the_first_true_branch_or_the_default(db: AsyncDatabase[Doc]) -> None:
    """$switch evaluates its branches in order and falls back to default."""
    await db.jobs.insert_many([{"_id": i} for i in (1, 2, 3)])
    switch = {
        "branches": [
            {"case": {"$lte": ["$_id", 1]}, "then": "low"},
            {"case": {"$lte": ["$_id", 2]}, "then": "mid"},
        ],
        "default": "high",
    }
    found = await run(db.jobs, [{"$project": {"band": {"$switch": switch}}}])
    assert [d["band"] for d in found] == ["low", "mid", "high"]


@pytest.mark.parametrize(
    ("switch", "code"),
    [
        ("x", 40060),
        ({"branches": 1}, 40061),
        ({"branches": [1]}, 40062),
        ({"branches": [{"case": True, "then": 1, "else": 2}]}, 40063),
        ({"branches": [{"then": 1}]}, 40064),
        ({"branches": [{"case": True}]}, 40065),
        ({"branches": [{"case": False, "then": 1}]}, 40066),
        ({"branches": [{"case": True, "then": 1}], "other": 1}, 40067),
        ({"branches": []}, 40068),
    ],
)
async def test_switch_answers_mongodbs_codes(
    db: AsyncDatabase[Doc], switch: Any, code: int
) -> None:
    """A malformed $switch, or one with no matching branch and no default, fails as on MongoDB."""
    await db.jobs.insert_one({"_id": 1})
    assert await code_of(db.jobs, [{"$replaceWith": {"$switch": switch}}]) == code


async def test_out_answers_an_empty_cursor(db: AsyncDatabase[Doc]) -> None:
    """A pipeline that ends in $out returns no documents; they are in the target."""
    await db.jobs.insert_many([{"_id": 1}, {"_id": 2}])
    assert await run(db.jobs, [{"$out": "copy"}]) == []
    assert await db.copy.count_documents({}) == 2
