"""The change events of DDL commands, which streams see only with ``showExpandedEvents``.

Command handlers call these after the change is applied: ``create`` (explicit, or implicit:
``Context.collection`` records it when a write creates a missing collection, before the write's
own events), ``createIndexes`` (one event listing the
indexes a command built), ``dropIndexes`` (one event per dropped index) and ``rename`` (for a
``renameCollection``, which the double does not have yet), each with MongoDB's
``operationDescription``.
"""

from __future__ import annotations

from typing import Any, Protocol

from bson.binary import Binary

from reactor.testing.double.events import EventLog
from reactor.testing.double.replies import Doc


class _Backend(Protocol):
    @property
    def log(self) -> EventLog: ...


class Context(Protocol):
    """What recording a DDL event needs of a command's context (``context.Context``)."""

    @property
    def db(self) -> str: ...

    @property
    def backend(self) -> _Backend: ...


ID_INDEX: Doc = {"v": 2, "key": {"_id": 1}, "name": "_id_"}


def record_create(ctx: Context, coll: str) -> None:
    """A ``create`` event for collection ``coll`` of the command's database."""
    description = {"idIndex": dict(ID_INDEX, key=dict(ID_INDEX["key"]))}
    ctx.backend.log.record("create", ctx.db, coll, fields={"operationDescription": description})


def record_create_indexes(ctx: Context, coll: str, specs: list[Doc]) -> None:
    """One ``createIndexes`` event for the indexes (wire specs) a command just built."""
    if specs:
        indexes = [index_description(spec) for spec in specs]
        fields = {"operationDescription": {"indexes": indexes}}
        ctx.backend.log.record("createIndexes", ctx.db, coll, fields=fields)


def record_drop_index(ctx: Context, coll: str, spec: Doc) -> None:
    """A ``dropIndexes`` event for one index that was just dropped."""
    fields = {"operationDescription": {"indexes": [index_description(spec)]}}
    ctx.backend.log.record("dropIndexes", ctx.db, coll, fields=fields)


def index_description(spec: Doc) -> Doc:
    """An index as MongoDB lists it: ``{v: 2, key, name, <options>}``."""
    key: Any = spec.get("key")
    described: Doc = {"v": 2, "key": dict(key or {}), "name": spec.get("name")}
    for option, value in spec.items():
        if option not in {"v", "key", "name", "ns"}:
            described[option] = value
    return described


def record_rename(
    ctx: Context, source: str, to_db: str, to_coll: str, *, drop_target: bool
) -> None:
    """A ``rename`` event of ``source`` (call after ``renameCollection`` moved the data).

    ``drop_target``: an existing target collection was dropped by the rename; its UUID is named
    in ``operationDescription.dropTarget``, as MongoDB does. The source's UUID and image setting
    move to the target; streams on the source collection are invalidated.
    """
    log = ctx.backend.log
    to = {"db": to_db, "coll": to_coll}
    description: Doc = {"to": dict(to)}
    if drop_target:
        description["dropTarget"] = Binary.from_uuid(log.collection_uuid(to_db, to_coll))
    log.record("rename", ctx.db, source, fields={"to": to, "operationDescription": description})
