"""Pieces of the double tested without a client: tokens and the event log."""

from __future__ import annotations

import pytest

from reactor.testing.double.events import EventLog
from reactor.testing.double.replies import CommandFailed
from reactor.testing.double.tokens import (
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
