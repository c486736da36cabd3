"""``bulkWrite`` (MongoDB 8.0): inserts, updates and deletes across collections in one command.

It runs against ``admin`` (13 ``Unauthorized`` elsewhere, as MongoDB answers an admin-only
command). Each op runs as the statement of the single-collection command it stands for, on its
own namespace (``writes``' statement helpers, as MongoDB builds an insert, update or delete
request per op): its change events, its errors (11000 with ``keyPattern``/``keyValue``, ...) and
its upserts are exactly those of ``insert``, ``update`` and ``delete``. An ordered request stops
at the first failed op; an unordered one runs them all.

The reply is MongoDB's: ``nErrors``, ``nInserted``, ``nMatched``, ``nModified``, ``nUpserted``,
``nDeleted`` and a cursor on ``admin.$cmd.bulkWrite`` with one item per op (``{ok, idx, n,
nModified?, upserted?: {index: 0, _id}}``, or ``{ok: 0, idx, code, errmsg, ..., n: 0}``; only
the failed ops with ``errorsOnly``). Items that do not fit in 16 MiB (or ``cursor.batchSize``)
wait for ``getMore``. An unacknowledged (``w: 0``) request opens no cursor.
"""

from __future__ import annotations

import dataclasses
from collections import deque
from dataclasses import dataclass, field

from bson.int64 import Int64

from reactor.testing.double import writes
from reactor.testing.double.bulk_request import BulkOp, BulkRequest, parse_request
from reactor.testing.double.context import Context, command
from reactor.testing.double.cursors import QueryCursor
from reactor.testing.double.replies import CommandFailed, Doc, error_code, not_supported

CURSOR_NAMESPACE = "admin.$cmd.bulkWrite"
_REFUSED_OPTIONS = {
    "update": ("upsertSupplied", "let", "constants", "return", "returnFields"),
    "delete": ("let", "sort", "return", "returnFields"),
}
_UPDATE_STATEMENT = {"filter": "q", "updateMods": "u", "upsert": "upsert", "multi": "multi"}
_UPDATE_OPTIONS = ("sort", "hint", "arrayFilters", "collation")


@dataclass
class _Tally:
    """The reply items and the summary counts, as the ops run."""

    errors_only: bool
    items: list[Doc] = field(default_factory=list)
    counts: dict[str, int] = field(
        default_factory=lambda: dict.fromkeys(
            ("nErrors", "nInserted", "nMatched", "nModified", "nUpserted", "nDeleted"), 0
        )
    )

    def succeeded(self, index: int, item: Doc, **counts: int) -> None:
        for name, n in counts.items():
            self.counts[name] += n
        if not self.errors_only:
            self.items.append({"ok": 1.0, "idx": index, **item})

    def failed(self, index: int, op: BulkOp, exc: Exception) -> None:
        self.counts["nErrors"] += 1
        code, message = error_code(exc) or (1, f"test double internal error: {exc!r}")
        item: Doc = {"ok": 0.0, "idx": index, "code": code, "errmsg": message}
        if isinstance(exc, CommandFailed):
            item.update(exc.extra)  # keyPattern and keyValue of a duplicate key
        item["n"] = 0
        if op.kind == "update":
            item["nModified"] = 0
        self.items.append(item)


@command("bulkWrite")
async def bulk_write(ctx: Context, cmd: Doc) -> Doc:
    if ctx.db != "admin":
        raise CommandFailed(13, "bulkWrite may only be run against the admin database.")
    request = parse_request(cmd)
    retryable = isinstance(cmd.get("lsid"), dict) and "txnNumber" in cmd
    tally = _Tally(request.errors_only)
    for index, op in enumerate(request.ops):
        try:
            _run_op(ctx, request, op, tally, index, retryable=retryable)
        except Exception as exc:
            tally.failed(index, op, exc)
            if request.ordered:
                break
    concern = cmd.get("writeConcern")
    acknowledged = not (isinstance(concern, dict) and concern.get("w") == 0)
    items = tally.items if acknowledged else []
    return {"cursor": _open_cursor(ctx, items, request.batch_size), **tally.counts}


def _run_op(
    ctx: Context, request: BulkRequest, op: BulkOp, tally: _Tally, index: int, *, retryable: bool
) -> None:
    """Run one op on its namespace and count it; raises what makes it a failed op."""
    db, coll_name = request.namespaces[op.ns_index]
    on_db = dataclasses.replace(ctx, db=db)
    for option in _REFUSED_OPTIONS.get(op.kind, ()):
        if option in op.spec:
            raise not_supported(f"bulkWrite {op.kind} with {option}")
    if op.spec.get("multi") and retryable:
        raise CommandFailed(72, "Cannot use retryable writes with multi=true")
    if op.kind == "insert":
        coll = on_db.collection({"insert": coll_name}, "insert")
        writes.insert_statement(coll, op.spec["document"], writes.recorder(on_db, coll))
        tally.succeeded(index, {"n": 1}, nInserted=1)
    elif op.kind == "update":
        _update(on_db, coll_name, op.spec, tally, index)
    else:
        coll = on_db.existing_or_empty({"delete": coll_name}, "delete")
        statement = {"q": op.spec["filter"], "limit": 0 if op.spec.get("multi") else 1}
        statement.update({name: op.spec[name] for name in ("hint", "collation") if name in op.spec})
        deleted = writes.delete_statement(on_db, coll, statement)
        tally.succeeded(index, {"n": deleted}, nDeleted=deleted)


def _update(ctx: Context, coll_name: str, spec: Doc, tally: _Tally, index: int) -> None:
    """An update op as the ``update`` command's statement ``{q, u, upsert, multi, ...}``."""
    statement: Doc = {key: spec[name] for name, key in _UPDATE_STATEMENT.items() if name in spec}
    statement.update({name: spec[name] for name in _UPDATE_OPTIONS if name in spec})
    result = writes.update_statement(ctx, {"update": coll_name}, statement)
    item: Doc = {"n": 1 if result.upserted else result.matched, "nModified": result.modified}
    if result.upserted:
        item["upserted"] = {"index": 0, "_id": result.upserted_id}
        tally.succeeded(index, item, nModified=result.modified, nUpserted=1)
    else:
        tally.succeeded(index, item, nModified=result.modified, nMatched=result.matched)


def _open_cursor(ctx: Context, items: list[Doc], batch_size: int | None) -> Doc:
    """The reply's cursor: the items that fit in the first batch, the rest left for getMore."""
    cursor = QueryCursor(CURSOR_NAMESPACE, deque(items))
    batch = cursor.take(batch_size)
    cursor_id = ctx.backend.cursors.add(cursor) if cursor.docs else 0
    return {"id": Int64(cursor_id), "firstBatch": batch, "ns": CURSOR_NAMESPACE}
