"""``$replaceWith: {$literal}`` and ``$switch`` on the double, as on MongoDB."""

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
