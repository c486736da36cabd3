"""How one recorded event reads on one stream: the change document MongoDB would send.

Post- and pre-images (``fullDocument: whenAvailable | required`` on updates,
``fullDocumentBeforeChange`` on updates, replaces and deletes) exist only for writes made while
the collection had ``changeStreamPreAndPostImages`` enabled, as on MongoDB; ``required`` without
one fails the getMore with 47 ``NoMatchingDocument``. ``updateLookup`` reads the document as it is
when the event is delivered.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bson.binary import Binary

from reactor.testing.double.events import ChangeEvent
from reactor.testing.double.replies import CommandFailed, Doc

Lookup = Callable[[str, str, Any], Doc | None]

# Events MongoDB sends only to streams opened with showExpandedEvents.
EXPANDED_EVENTS = frozenset(
    {
        "create",
        "createIndexes",
        "dropIndexes",
        "modify",
        "shardCollection",
        "refineCollectionShardKey",
        "reshardCollection",
    }
)
_ABSENT: Any = object()


@dataclass(frozen=True)
class RenderOptions:
    """The ``$changeStream`` options that shape each event."""

    full_document: str = "default"
    before_change: str = "off"
    expanded: bool = False  # showExpandedEvents


def render(event: ChangeEvent, options: RenderOptions, lookup: Lookup) -> Doc:
    """The change document for ``event`` as a stream with ``options`` sees it."""
    doc: Doc = {
        "_id": event.position.token(),
        "operationType": event.operation,
        "clusterTime": event.position.cluster_time,
        "wallTime": event.wall_time,
    }
    if options.expanded and event.collection_uuid is not None:
        doc["collectionUUID"] = Binary.from_uuid(event.collection_uuid)
    full = _full_document(event, options, lookup)
    if full is not _ABSENT:
        doc["fullDocument"] = full
    doc["ns"] = {"db": event.db} if event.coll is None else {"db": event.db, "coll": event.coll}
    if event.document_key is not None:
        doc["documentKey"] = event.document_key
    if event.operation == "update":
        doc["updateDescription"] = event.update_description(expanded=options.expanded)
    for name, value in (event.fields or {}).items():
        if name != "operationDescription" or options.expanded:
            doc[name] = copy.deepcopy(value)
    before = _before_change(event, options)
    if before is not _ABSENT:
        doc["fullDocumentBeforeChange"] = before
    return doc


def _full_document(event: ChangeEvent, options: RenderOptions, lookup: Lookup) -> Any:
    if event.operation in {"insert", "replace"}:
        return event.after
    if event.operation != "update" or options.full_document == "default":
        return _ABSENT
    if options.full_document == "updateLookup":
        key = event.document_key or {}
        return lookup(event.db, event.coll or "", key.get("_id"))
    if event.images:
        return event.after
    if options.full_document == "required":
        raise CommandFailed(
            47,
            "Change stream was configured to require a post-image for all update events, "
            f"but the post-image was not found for event: {_describe(event)}",
        )
    return None


def _before_change(event: ChangeEvent, options: RenderOptions) -> Any:
    if options.before_change == "off" or event.operation not in {"update", "replace", "delete"}:
        return _ABSENT
    if event.images:
        return event.before
    if options.before_change == "required":
        raise CommandFailed(
            47,
            "Change stream was configured to require a pre-image for all update, delete and "
            f"replace events, but the pre-image was not found for event: {_describe(event)}",
        )
    return None


def _describe(event: ChangeEvent) -> str:
    namespace = f"{event.db}.{event.coll}"
    return f"{{operationType: {event.operation}, ns: {namespace}, key: {event.document_key}}}"
