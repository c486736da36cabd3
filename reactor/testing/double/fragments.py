"""Batches of change events: by count and by size, with ``$changeStreamSplitLargeEvent``.

A batch stops before a document that would take it past 16 MiB (it always holds at least one).
A stream whose pipeline ends with ``$changeStreamSplitLargeEvent`` splits an event over 16 MiB
into fragments, as MongoDB does: each fragment has its own resume token and a ``splitEvent``
``{fragment, of}``, and carries as many of the event's top-level fields, in order, as fit;
a single field too large for a fragment fails with 7182803.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import bson

from reactor.testing.double.replies import CommandFailed, Doc
from reactor.testing.double.tokens import Position

MAX_BATCH_BYTES = 16 * 1024 * 1024
SPLIT_ABOVE_BYTES = 16 * 1024 * 1024  # BSONObjMaxUserSize
_FRAGMENT_BUDGET = SPLIT_ABOVE_BYTES - 1024  # room for _id and splitEvent


@dataclass
class Batch:
    """The documents of one reply, bounded by ``limit`` (batchSize) and by bytes."""

    limit: int | None
    docs: list[Doc] = field(default_factory=list)
    size: int = 0

    def fits(self, doc_size: int) -> bool:
        if self.limit is not None and len(self.docs) >= self.limit:
            return False
        return not self.docs or self.size + doc_size <= MAX_BATCH_BYTES

    def add(self, doc: Doc, doc_size: int) -> None:
        self.docs.append(doc)
        self.size += doc_size


def split_event(doc: Doc, position: Position) -> list[tuple[Doc, int, Position]]:
    """``doc`` as fragments ``(fragment, size, position)``, or whole if it is small enough."""
    size = len(bson.encode(doc))
    if size <= SPLIT_ABOVE_BYTES:
        return [(doc, size, position)]
    groups: list[Doc] = []
    group: Doc = {}
    group_size = 0
    for name, value in doc.items():
        if name == "_id":
            continue
        field_size = len(bson.encode({name: value})) - 5
        if field_size > _FRAGMENT_BUDGET:
            raise CommandFailed(
                7182803, "Could not split a change event into fragments under the 16MB limit"
            )
        if group and group_size + field_size > _FRAGMENT_BUDGET:
            groups.append(group)
            group, group_size = {}, 0
        group[name] = value
        group_size += field_size
    groups.append(group)
    fragments = []
    for number, fields in enumerate(groups, 1):
        at = position.fragment_of(number)
        fragment = {"_id": at.token(), "splitEvent": {"fragment": number, "of": len(groups)}}
        fragment.update(fields)
        fragments.append((fragment, len(bson.encode(fragment)), at))
    return fragments
