"""Pieces of the double tested without a client: tokens, the event log, scan short cuts."""

from __future__ import annotations

from typing import Any

import mongomock
import pytest
from bson import ObjectId

from reactor.testing.events import EventLog
from reactor.testing.fastpath import accelerate
from reactor.testing.replies import CommandFailed
from reactor.testing.tokens import (
    KIND_EVENT,
    KIND_HIGH_WATER,
    Clock,
    Position,
    parse_token,
)


def test_tokens_round_trip_and_order_like_positions() -> None:
    """A position's token parses back to it, and tokens sort in position order."""
    early, late = Position(100, 2, KIND_EVENT), Position(100, 2, KIND_HIGH_WATER)
    later = Position(101, 1, KIND_EVENT)
    assert parse_token(early.token()) == early
    assert early.token()["_data"] < late.token()["_data"] < later.token()["_data"]


def test_fragment_tokens_sit_between_their_event_and_the_next() -> None:
    """A split event's fragment tokens round-trip and sort after it, before what follows."""
    event = Position(100, 2, KIND_EVENT)
    fragment = event.fragment_of(2)
    after = Position(100, 2, KIND_HIGH_WATER)
    assert parse_token(fragment.token()) == fragment
    assert fragment.whole() == event
    assert event.token()["_data"] < fragment.token()["_data"] < after.token()["_data"]
    assert event < fragment < after


@pytest.mark.parametrize("token", [{"_data": "82"}, {"_data": 5}, {"x": 1}, "82", None])
def test_malformed_tokens_are_code_260(token: object) -> None:
    """Anything that is not a token the double issued fails with InvalidResumeToken."""
    with pytest.raises(CommandFailed) as caught:
        parse_token(token)
    assert caught.value.code == 260


def test_clock_is_strictly_increasing() -> None:
    """Each tick is later than the one before, even within one second."""
    clock = Clock()
    ticks = [clock.tick() for _ in range(50)]
    assert ticks == sorted(set(ticks))
    assert clock.now == ticks[-1]


def test_capped_log_drops_the_oldest_events_like_an_oplog() -> None:
    """Past its cap the log forgets its oldest events, and starting before them fails with 286."""
    log = EventLog(Clock(), max_events=10)
    first = log.record("insert", "db", "c", after={"_id": 0})
    for i in range(1, 11):
        log.record("insert", "db", "c", after={"_id": i})
    assert len(log.after(Position(0, 0, 0))) == 10
    with pytest.raises(CommandFailed) as caught:
        log.check_start(Position(0, 0, 0))
    assert caught.value.code == 286
    log.check_start(first.position)


def test_update_description_without_the_update_is_a_structural_diff() -> None:
    """Without the update document, nested changes show as dotted paths, removals by name."""
    log = EventLog(Clock())
    event = log.record(
        "update",
        "db",
        "c",
        before={"_id": 1, "a": 1, "b": {"x": 1}, "gone": True},
        after={"_id": 1, "a": 1, "b": {"x": 2}, "new": 3},
    )
    assert event.update_description() == {
        "updatedFields": {"b.x": 2, "new": 3},
        "removedFields": ["gone"],
        "truncatedArrays": [],
    }


@pytest.mark.parametrize(
    "query",
    [
        {"k": "a"},
        {"k": 1},
        {"k": None},
        {"_id": 2},
        {"_id": 2, "k": "b"},
        {"_id": {"$in": [1, 3]}},
        {"$and": [{"k": {"$type": "string"}}, {"k": "a"}]},
        {"k": "a", "n": {"$gte": 1}},
        {"tags": "x"},
        {"oid": ObjectId("0123456789ab0123456789ab")},
    ],
)
def test_scan_short_cuts_match_what_mongomock_matches(query: dict[str, object]) -> None:
    """An accelerated collection returns exactly the documents plain mongomock returns."""
    docs: list[dict[str, object]] = [
        {"_id": 1, "k": "a", "n": 1, "tags": ["x", "y"]},
        {"_id": 2, "k": "b", "n": 2, "tags": "x"},
        {"_id": 3, "k": 1, "n": 3, "oid": ObjectId("0123456789ab0123456789ab")},
        {"_id": 4, "k": ["a", "c"], "n": 0},
        {"_id": 5, "n": 5},
        {"_id": 6, "k": 1.0},
    ]
    plain: Any = mongomock.MongoClient().db.plain
    fast = accelerate(mongomock.MongoClient().db.fast)
    plain.insert_many([dict(doc) for doc in docs])
    fast.insert_many([dict(doc) for doc in docs])
    assert list(fast.find(query)) == list(plain.find(query))


def test_accelerated_unique_index_still_rejects_duplicates() -> None:
    """Unique checks through the short cut still see a colliding document."""
    coll = accelerate(mongomock.MongoClient().db.c)
    coll.create_index("k", unique=True, partialFilterExpression={"k": {"$type": "string"}})
    coll.insert_many([{"k": "a"}, {"k": 1}, {"k": 1}])
    with pytest.raises(mongomock.DuplicateKeyError):
        coll.insert_one({"k": "a"})
