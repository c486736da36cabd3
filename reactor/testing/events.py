"""The change-event log every write through the double appends to, in cluster-time order."""

from __future__ import annotations

import asyncio
import bisect
import datetime as dt
from dataclasses import dataclass

from reactor.testing.replies import CommandFailed, Doc
from reactor.testing.tokens import KIND_EVENT, KIND_HIGH_WATER, Clock, Position


@dataclass(frozen=True)
class ChangeEvent:
    """One recorded write, with the images a change stream may render from it."""

    position: Position
    operation: str  # insert, update, replace, delete, drop, dropDatabase
    db: str
    coll: str | None
    wall_time: dt.datetime
    before: Doc | None = None
    after: Doc | None = None

    @property
    def document_key(self) -> Doc | None:
        image = self.after if self.after is not None else self.before
        return None if image is None else {"_id": image["_id"]}

    def update_description(self) -> Doc:
        """Top-level diff of the before and after images (nested changes show as whole fields)."""
        before, after = self.before or {}, self.after or {}
        updated = {k: v for k, v in after.items() if k not in before or before[k] != v}
        removed = [k for k in before if k not in after]
        return {"updatedFields": updated, "removedFields": removed, "truncatedArrays": []}


MAX_RETAINED_EVENTS = 100_000


class EventLog:
    """Ordered change events plus the bookkeeping for waiting on and forgetting them.

    Like an oplog it is capped: past ``max_events`` the oldest tenth is dropped, and resuming
    from before what is left fails with ChangeStreamHistoryLost.
    """

    def __init__(self, clock: Clock, max_events: int = MAX_RETAINED_EVENTS) -> None:
        self._clock = clock
        self._max_events = max_events
        self._events: list[ChangeEvent] = []
        self._positions: list[Position] = []
        self._changed = asyncio.Event()
        self._horizon = Position(0, 0, 0)
        self._last_forgotten = Position(0, 0, 0)

    def record(
        self,
        operation: str,
        db: str,
        coll: str | None,
        *,
        before: Doc | None = None,
        after: Doc | None = None,
    ) -> ChangeEvent:
        position = Position.at(self._clock.tick(), KIND_EVENT)
        wall_time = dt.datetime.now(dt.UTC).replace(tzinfo=None)
        event = ChangeEvent(position, operation, db, coll, wall_time, before, after)
        self._events.append(event)
        self._positions.append(position)
        self._changed.set()
        self._changed = asyncio.Event()
        if len(self._events) > self._max_events:
            self._drop_oldest(max(1, self._max_events // 10))
        return event

    def after(self, position: Position) -> list[ChangeEvent]:
        """The retained events later than ``position``, oldest first."""
        return self._events[bisect.bisect_right(self._positions, position) :]

    def at(self, position: Position) -> ChangeEvent | None:
        """The retained event recorded exactly at ``position``, if any."""
        index = bisect.bisect_left(self._positions, position)
        found = index < len(self._positions) and self._positions[index] == position
        return self._events[index] if found else None

    def end(self) -> Position:
        """A high-water mark after every event recorded so far."""
        return Position.at(self._clock.now, KIND_HIGH_WATER)

    def advance(self) -> Position:
        """A fresh high-water mark, as a replica set's periodic no-op write would give."""
        return Position.at(self._clock.tick(), KIND_HIGH_WATER)

    def changed(self) -> asyncio.Event:
        """An event set by the next :meth:`record` (take it before scanning, then wait on it)."""
        return self._changed

    def forget(self) -> None:
        """Drop the history: starting a stream from any earlier position now fails."""
        self._drop_oldest(len(self._events))
        self._horizon = self.advance()

    def _drop_oldest(self, count: int) -> None:
        if count:
            self._last_forgotten = self._positions[count - 1]
            self._horizon = max(self._horizon, self._last_forgotten)
        del self._events[:count]
        del self._positions[:count]

    def check_start(self, position: Position) -> None:
        """Code 286 when a new stream would start before the retained history."""
        if position < self._horizon:
            raise CommandFailed(286, _lost_message(position))

    def check_open(self, position: Position) -> None:
        """Code 286 when an open stream had not yet read events that were forgotten."""
        if position < self._last_forgotten:
            raise CommandFailed(286, _lost_message(position))


def _lost_message(position: Position) -> str:
    return (
        "Resume of change stream was not possible, as the resume point may no longer be in the "
        f"oplog (resume point {position.cluster_time}, history forgotten by the test double)"
    )
