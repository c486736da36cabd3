"""Inserts, updates and deletes on one collection, each atomic per document.

Every function reports each document it changed through ``on_change(before, after)`` right
after storing it (``before`` None for an insert, ``after`` None for a delete), so the caller can
append the change event even when a later document of a multi-document write fails.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import bson
from bson import ObjectId, Regex

from reactor.testing.double.engine import query
from reactor.testing.double.engine.collection import Collection
from reactor.testing.double.engine.paths import same
from reactor.testing.double.engine.updates import Update, apply_update, upsert_document
from reactor.testing.double.replies import CommandFailed, Doc

MAX_BSON_BYTES = 16 * 1024 * 1024
OnChange = Callable[[Doc | None, Doc | None], None]


@dataclass
class UpdateResult:
    matched: int = 0
    modified: int = 0
    upserted_id: Any = None
    upserted: bool = False


def with_id(doc: Doc) -> Doc:
    """``doc`` with an ``_id`` (generated if absent) as its first field."""
    if "_id" not in doc:
        return {"_id": ObjectId(), **doc}
    doc_id = doc["_id"]
    if isinstance(doc_id, list | Regex):
        raise CommandFailed(53, f"The '_id' value cannot be of type {type(doc_id).__name__}")
    if isinstance(doc_id, dict) and any(str(key).startswith("$") for key in doc_id):
        raise CommandFailed(2, "_id fields may not contain '$'-prefixed fields")
    if next(iter(doc)) != "_id":
        return {"_id": doc_id, **{k: v for k, v in doc.items() if k != "_id"}}
    return doc


def check_size(doc: Doc, code: int) -> None:
    size = len(bson.encode(doc))
    if size > MAX_BSON_BYTES:
        if code == 17419:
            raise CommandFailed(
                17419, f"Resulting document after update is larger than {MAX_BSON_BYTES}"
            )
        raise CommandFailed(
            10334, f"object to insert too large. size in bytes: {size}, max size: {MAX_BSON_BYTES}"
        )


def insert(coll: Collection, doc: Doc, on_change: OnChange) -> Doc:
    stored = with_id(doc)
    check_size(stored, 10334)
    coll.insert(stored)
    on_change(None, stored)
    return stored


def update(
    coll: Collection,
    spec: Doc,
    change: Update,
    on_change: OnChange,
    *,
    multi: bool = False,
    upsert: bool = False,
    sort: Any = None,
    hint: Any = None,
) -> UpdateResult:
    """Update the first match in ``sort`` order (or every match with ``multi``), or upsert."""
    if multi and sort:
        raise CommandFailed(72, "Cannot specify sort with multi=true")
    if multi and change.is_replacement:
        raise CommandFailed(9, "multi update is not supported for replacement-style update")
    targets = query.find(coll, spec, sort=sort, limit=0 if multi else 1, hint=hint)
    result = UpdateResult()
    for seq, before in targets:
        result.matched += 1
        if replace_record(coll, seq, before, apply_update(before, change, spec), on_change):
            result.modified += 1
    if not targets and upsert:
        stored = insert_upserted(coll, spec, change, on_change)
        result.upserted_id, result.upserted = stored["_id"], True
    return result


def replace_record(
    coll: Collection, seq: int, before: Doc, after: Doc, on_change: OnChange
) -> bool:
    """Store ``after`` over ``before``; False when nothing changed (no write, no event)."""
    if same(after, before):
        return False
    check_size(after, 17419)
    coll.replace(seq, after)
    on_change(before, after)
    return True


def insert_upserted(coll: Collection, spec: Doc, change: Update, on_change: OnChange) -> Doc:
    stored = with_id(upsert_document(spec, change))
    check_size(stored, 17419)
    coll.insert(stored)
    on_change(None, stored)
    return stored


def delete(
    coll: Collection,
    spec: Doc,
    on_change: OnChange,
    *,
    just_one: bool,
    sort: Any = None,
    hint: Any = None,
) -> int:
    targets = query.find(coll, spec, sort=sort, limit=1 if just_one else 0, hint=hint)
    for seq, _ in targets:
        before = coll.delete(seq)
        on_change(before, None)
    return len(targets)
