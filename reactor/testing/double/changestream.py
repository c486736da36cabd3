"""Change-stream cursors: where a stream starts, which events it sees, how they are rendered.

A stream keeps a :class:`Position` in the :class:`EventLog`. Each batch scans the events after it,
renders the ones the stream watches, runs them through the ``$match``/``$project`` stages and moves
the position on, to the last returned event when the batch is full, else to the log's high-water
mark. The position's token is the batch's ``postBatchResumeToken``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import bson
from bson.timestamp import Timestamp

from reactor.testing.double.events import ChangeEvent, EventLog
from reactor.testing.double.fragments import Batch, split_event
from reactor.testing.double.render import EXPANDED_EVENTS, Lookup, RenderOptions, render
from reactor.testing.double.replies import CommandFailed, Doc
from reactor.testing.double.stages import SPLIT_STAGE, Stage, apply_stages, compile_stages
from reactor.testing.double.tokens import KIND_INVALIDATE, KIND_START, Position, parse_token

MAX_EVENT_BYTES = 16 * 1024 * 1024 + 16 * 1024  # BSONObjMaxUserSize + 16 KiB of headroom
_OPTIONS = {
    "fullDocument": {"default", "updateLookup", "whenAvailable", "required"},
    "fullDocumentBeforeChange": {"off", "whenAvailable", "required"},
}
_KNOWN = {
    *_OPTIONS,
    "resumeAfter",
    "startAfter",
    "startAtOperationTime",
    "allChangesForCluster",
    "showExpandedEvents",
}


@dataclass
class ChangeStream:
    """One open change-stream cursor (``coll`` None: a database; ``db`` None: the cluster)."""

    db: str | None
    coll: str | None
    position: Position
    stages: list[Stage]
    options: RenderOptions = field(default_factory=RenderOptions)
    split: bool = False  # the pipeline ends with $changeStreamSplitLargeEvent
    invalidated: bool = False
    pending: list[Doc] = field(default_factory=list)

    @property
    def namespace(self) -> str:
        return f"{self.db or 'admin'}.{self.coll or '$cmd.aggregate'}"

    def collect(self, log: EventLog, lookup: Lookup, limit: int | None) -> list[Doc]:
        """The next batch available now (never waits); moves the position past it."""
        log.check_open(self.position)
        batch = Batch(limit)
        for doc in self.pending:
            batch.add(doc, 0)
        self.pending = []
        if self.invalidated:
            return batch.docs
        if self.position.fragment:  # resumed, or cut, inside a split event
            event = log.at(self.position.whole())
            if event is not None and not self._emit(event, lookup, batch, self.position):
                return batch.docs
        for event in log.after(self.position):
            if not batch.fits(0):
                return batch.docs
            before, self.position = self.position, event.position
            if self.watches(event) and not self._emit(event, lookup, batch, before):
                return batch.docs
            if self.invalidated:
                return batch.docs
        self.position = max(self.position, log.end())
        return batch.docs

    def watches(self, event: ChangeEvent) -> bool:
        if event.operation in EXPANDED_EVENTS and not self.options.expanded:
            return False
        if self.db is None:
            return event.db not in {"admin", "config", "local"}
        return event.db == self.db and (self.coll is None or event.coll == self.coll)

    def _emit(self, event: ChangeEvent, lookup: Lookup, batch: Batch, before: Position) -> bool:
        """Add ``event``'s documents; False when the batch filled up before all of them."""
        doc = apply_stages(self.stages, render(event, self.options, lookup))
        if doc is not None:
            if doc.get("_id") != event.position.token():
                raise CommandFailed(
                    280,
                    "Encountered an event whose _id field, which contains the resume token, "
                    "was modified by the pipeline.",
                )
            done = before.fragment if before.whole() == event.position else 0
            for piece, size, at in self._pieces(doc, event.position):
                if at.fragment and at.fragment <= done:
                    continue
                if not batch.fits(size):
                    self.position = before  # the next batch starts with this piece
                    return False
                batch.add(piece, size)
                self.position = before = at
        if self.invalidated_by(event):
            self.invalidate(event.position, event.wall_time, batch.docs)
        return True

    def _pieces(self, doc: Doc, position: Position) -> list[tuple[Doc, int, Position]]:
        if self.split:
            return split_event(doc, position)
        return [(doc, check_size(doc), position)]

    def invalidated_by(self, event: ChangeEvent) -> bool:
        if self.coll is not None:
            return event.operation in {"drop", "rename"}
        return self.db is not None and event.operation == "dropDatabase"

    def invalidate(self, at: Position, wall_time: Any, batch: list[Doc]) -> None:
        self.position = Position(at.time, at.inc, KIND_INVALIDATE)
        self.invalidated = True
        batch.append(
            {
                "_id": self.position.token(),
                "operationType": "invalidate",
                "clusterTime": self.position.cluster_time,
                "wallTime": wall_time,
            }
        )


def check_size(doc: Doc) -> int:
    """``doc``'s size; over 16 MiB it fails the batch with 10334, as on MongoDB."""
    size = len(bson.encode(doc))
    if size > MAX_EVENT_BYTES:
        raise CommandFailed(
            10334,
            f"BSONObj size: {size} (0x{size:X}) is invalid. Size must be between 0 and "
            f"{MAX_EVENT_BYTES}(16MB) First element: _id: {doc.get('_id')}",
        )
    return size


def check_read_concern(cmd: Doc) -> None:
    """A change stream reads at ``majority``: another explicit level fails with 72."""
    concern = cmd.get("readConcern")
    level = concern.get("level") if isinstance(concern, dict) else None
    if level not in (None, "majority"):
        raise CommandFailed(
            72, f"$changeStream only supports readConcern level 'majority', not {level!r}"
        )


def open_stream(
    log: EventLog, db: str, coll: str | None, spec: Any, stages: list[Any]
) -> ChangeStream:
    """A stream for ``{$changeStream: spec}`` on ``db``/``coll``, positioned where it starts."""
    if not isinstance(spec, dict):
        raise CommandFailed(40573, "the $changeStream stage must be an object")
    _check_options(spec)
    cluster = bool(spec.get("allChangesForCluster"))
    if cluster and (db != "admin" or coll is not None):
        raise CommandFailed(40575, "allChangesForCluster needs aggregate: 1 on the admin database")
    if db == "admin" and not cluster:
        raise CommandFailed(73, "$changeStream may not be opened on the internal admin database")
    split = bool(stages) and stages[-1] == {SPLIT_STAGE: {}}
    stream = ChangeStream(
        None if cluster else db,
        coll,
        _start_position(log, spec),
        compile_stages(stages[:-1] if split else stages),
        RenderOptions(
            spec.get("fullDocument", "default"),
            spec.get("fullDocumentBeforeChange", "off"),
            bool(spec.get("showExpandedEvents")),
        ),
        split,
    )
    _resume_into_invalidate(log, stream, spec)
    return stream


def _check_options(spec: Doc) -> None:
    for name, value in spec.items():
        if name not in _KNOWN:
            raise CommandFailed(40415, f"BSON field '$changeStream.{name}' is an unknown field.")
        if name in _OPTIONS and value not in _OPTIONS[name]:
            raise CommandFailed(2, f"invalid $changeStream.{name}: {value!r}")
    starts = [
        name for name in ("resumeAfter", "startAfter", "startAtOperationTime") if name in spec
    ]
    if len(starts) > 1:
        raise CommandFailed(40674, f"only one of {', '.join(starts)} may be given")


def _start_position(log: EventLog, spec: Doc) -> Position:
    if "resumeAfter" in spec or "startAfter" in spec:
        position = parse_token(spec.get("resumeAfter", spec.get("startAfter")))
        if "resumeAfter" in spec and position.kind == KIND_INVALIDATE:
            raise CommandFailed(260, "cannot resumeAfter an invalidate event; use startAfter")
    elif "startAtOperationTime" in spec:
        start = spec["startAtOperationTime"]
        if not isinstance(start, Timestamp):
            raise CommandFailed(14, "startAtOperationTime must be a timestamp")
        position = Position.at(start, KIND_START)
    else:
        return log.end()
    log.check_start(position)
    return position


def _resume_into_invalidate(log: EventLog, stream: ChangeStream, spec: Doc) -> None:
    """Resuming right after the drop that invalidated a stream delivers the invalidate again."""
    event = log.at(stream.position) if "resumeAfter" in spec else None
    if event is not None and stream.watches(event) and stream.invalidated_by(event):
        stream.invalidate(event.position, event.wall_time, stream.pending)
