"""The change-event log every write through the double appends to, in cluster-time order."""

from __future__ import annotations

import bisect
import contextlib
import copy
import datetime as dt
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from reactor.testing.double.replies import CommandFailed, Doc
from reactor.testing.double.tokens import KIND_EVENT, KIND_HIGH_WATER, Clock, Position
from reactor.testing.double.update_description import describe


@dataclass(frozen=True)
class ChangeEvent:
    """One recorded write, with the images a change stream may render from it."""

    position: Position
    operation: str  # insert, update, replace, delete, drop, dropDatabase, rename, create, ...
    db: str
    coll: str | None
    wall_time: dt.datetime
    before: Doc | None = None
    after: Doc | None = None
    update: Any = None  # the update document or pipeline, when the write path passes it
    fields: Doc | None = None  # event-specific fields: rename's "to", "operationDescription"
    collection_uuid: uuid.UUID | None = None  # shown as collectionUUID with showExpandedEvents
    images: bool = False  # written with changeStreamPreAndPostImages enabled
    _descriptions: dict[bool, Doc] = field(default_factory=dict, compare=False, repr=False)

    @property
    def document_key(self) -> Doc | None:
        image = self.after if self.after is not None else self.before
        return None if image is None else {"_id": image["_id"]}

    def update_description(self, *, expanded: bool = False) -> Doc:
        """MongoDB 6's ``updateDescription`` (``expanded``: with ``disambiguatedPaths``)."""
        cached = self._descriptions.get(expanded)
        if cached is None:
            cached = describe(self.before, self.after, self.update, expanded=expanded)
            self._descriptions[expanded] = cached
        return copy.deepcopy(cached)


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
        self._listeners: list[Callable[[], None]] = []
        self._horizon = Position(0, 0, 0)
        self._last_forgotten = Position(0, 0, 0)
        self._uuids: dict[tuple[str, str], uuid.UUID] = {}
        self._images: set[tuple[str, str]] = set()

    def collection_uuid(self, db: str, coll: str) -> uuid.UUID:
        """The UUID of collection ``db.coll``: fixed from its first event until it is dropped."""
        return self._uuids.setdefault((db, coll), uuid.uuid4())

    def set_images(self, db: str, coll: str, *, enabled: bool) -> None:
        """Keep pre- and post-images for later writes to ``db.coll`` (collMod/create option)."""
        (self._images.add if enabled else self._images.discard)((db, coll))

    def images_enabled(self, db: str, coll: str) -> bool:
        return (db, coll) in self._images

    def record(
        self,
        operation: str,
        db: str,
        coll: str | None,
        *,
        before: Doc | None = None,
        after: Doc | None = None,
        update: Any = None,
        fields: Doc | None = None,
    ) -> ChangeEvent:
        """Append one event; call it once the write is visible to reads (updateLookup reads it).

        ``update`` is the update document or pipeline of an ``update`` event (without it the
        description is a structural diff of the images); ``fields`` are extra event fields,
        such as a ``rename``'s ``{"to": {"db", "coll"}}``. A ``drop`` (and ``dropDatabase``)
        retires the collection's UUID, a ``rename`` moves it to the ``to`` namespace.
        """
        position = Position.at(self._clock.tick(), KIND_EVENT)
        wall_time = dt.datetime.now(dt.UTC).replace(tzinfo=None)
        ident = None if coll is None else self.collection_uuid(db, coll)
        images = coll is not None and (db, coll) in self._images
        event = ChangeEvent(
            position, operation, db, coll, wall_time, before, after, update, fields, ident, images
        )
        self._retire_uuids(event)
        self._events.append(event)
        self._positions.append(position)
        if len(self._events) > self._max_events:
            self._drop_oldest(max(1, self._max_events // 10))
        self.notify()
        return event

    def _retire_uuids(self, event: ChangeEvent) -> None:
        if event.operation == "dropDatabase":
            for key in [key for key in self._uuids if key[0] == event.db]:
                del self._uuids[key]
            self._images = {key for key in self._images if key[0] != event.db}
        elif event.operation in {"drop", "rename"} and event.coll is not None:
            source = (event.db, event.coll)
            ident = self._uuids.pop(source, None)
            images = source in self._images
            self._images.discard(source)
            to = (event.fields or {}).get("to")
            if event.operation == "rename" and isinstance(to, dict):
                target = (str(to.get("db")), str(to.get("coll")))
                if ident is not None:
                    self._uuids[target] = ident
                if images:
                    self._images.add(target)

    def subscribe(self, listener: Callable[[], None]) -> None:
        """Call ``listener`` synchronously after each :meth:`record`, until unsubscribed.

        This is how a waiting change-stream getMore answers the moment an event is written, from
        inside the writing command, without waiting for the event loop to come round to it.
        """
        self._listeners.append(listener)

    @property
    def listeners(self) -> int:
        """How many listeners (waiting getMores) are subscribed."""
        return len(self._listeners)

    def unsubscribe(self, listener: Callable[[], None]) -> None:
        with contextlib.suppress(ValueError):
            self._listeners.remove(listener)

    def notify(self) -> None:
        """Run every listener now (also called when stalled change streams resume)."""
        for listener in list(self._listeners):
            listener()

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
