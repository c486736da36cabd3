"""insert, update and delete: each statement runs through the engine and becomes change events."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from reactor.testing.double.context import Context, command
from reactor.testing.double.engine import crud
from reactor.testing.double.engine.collection import Collection
from reactor.testing.double.engine.updates import parse_update
from reactor.testing.double.replies import CommandFailed, Doc, not_supported
from reactor.testing.double.write_errors import write_error


def recorder(
    ctx: Context, coll: Collection, update: Any = None, *, replacement: bool | None = None
) -> crud.OnChange:
    """The ``on_change`` callback that appends each document write to the change-event log.

    ``update`` is the statement's update document or pipeline (None for inserts and deletes):
    a replacement document makes ``replace`` events, anything else ``update`` events whose
    ``updateDescription`` is derived from it as MongoDB derives it (``replacement`` says which,
    for a caller that already knows). The engine calls back once the write is stored, so a
    getMore answered from inside the call (and ``updateLookup``) sees the write.
    """
    if replacement is None:
        replacement = update is not None and parse_update(update).is_replacement

    def on_change(before: Doc | None, after: Doc | None) -> None:
        if before is None:
            operation = "insert"
        elif after is None:
            operation = "delete"
        else:
            operation = "replace" if replacement else "update"
        change = update if operation == "update" else None
        ctx.record(operation, coll, before, after, update=change)

    return on_change


def write_reply(n: int, errors: list[Doc], **extra: Any) -> Doc:
    reply: Doc = {"n": n, **extra}
    if errors:
        reply["writeErrors"] = errors
    return reply


def _statements(cmd: Doc, key: str) -> list[Any]:
    found = cmd.get(key)
    if not isinstance(found, list):
        raise CommandFailed(9, f"BSON field '{next(iter(cmd))}.{key}' is missing or not an array")
    return found


def _run_batch(cmd: Doc, statements: list[Any], run: Callable[[int, Any], None]) -> list[Doc]:
    """Run each statement; errors become writeErrors, an ordered batch stops at the first."""
    errors: list[Doc] = []
    for index, statement in enumerate(statements):
        try:
            run(index, statement)
        except Exception as exc:
            errors.append(write_error(index, exc))
            if cmd.get("ordered", True):
                break
    return errors


@command("insert")
async def insert(ctx: Context, cmd: Doc) -> Doc:
    documents = _statements(cmd, "documents")
    coll = ctx.collection(cmd, "insert") if documents else ctx.existing_or_empty(cmd, "insert")
    on_change = recorder(ctx, coll)
    inserted = 0

    def run(index: int, doc: Any) -> None:
        nonlocal inserted
        insert_statement(coll, doc, on_change)
        inserted += 1

    errors = _run_batch(cmd, documents, run)
    return write_reply(inserted, errors)


def insert_statement(coll: Collection, doc: Any, on_change: crud.OnChange) -> None:
    """One document of an insert (stored with its change event, or an error raised)."""
    if not isinstance(doc, dict):
        raise CommandFailed(2, "a document to insert must be an object")
    crud.insert(coll, doc, on_change)


@command("update")
async def update(ctx: Context, cmd: Doc) -> Doc:
    ctx.name(cmd, "update")
    if cmd.get("let"):
        raise not_supported("update with let")
    statements = _statements(cmd, "updates")
    matched, modified, upserted = 0, 0, []

    def run(index: int, spec: Any) -> None:
        nonlocal matched, modified
        result = update_statement(ctx, cmd, spec)
        if result.upserted:
            upserted.append({"index": index, "_id": result.upserted_id})
        matched, modified = matched + result.matched, modified + result.modified

    errors = _run_batch(cmd, statements, run)
    extra: Doc = {"nModified": modified}
    if upserted:
        extra["upserted"] = upserted
    return write_reply(matched + len(upserted), errors, **extra)


def update_statement(ctx: Context, cmd: Doc, spec: Any) -> crud.UpdateResult:
    """One update statement; a missing collection is created only by an upsert, as on MongoDB."""
    if not isinstance(spec, dict):
        raise CommandFailed(9, "an update statement must be an object")
    for option in ("arrayFilters", "collation", "c"):
        if spec.get(option):
            raise not_supported(f"update with {option}")
    change = parse_update(spec.get("u"))
    upsert = bool(spec.get("upsert"))
    coll = ctx.collection(cmd, "update") if upsert else ctx.existing_or_empty(cmd, "update")
    return crud.update(
        coll,
        spec.get("q") or {},
        change,
        recorder(ctx, coll, spec.get("u")),
        multi=bool(spec.get("multi")),
        upsert=upsert,
        sort=spec.get("sort") or None,
        hint=spec.get("hint") or None,
    )


@command("delete")
async def delete(ctx: Context, cmd: Doc) -> Doc:
    coll = ctx.existing_or_empty(cmd, "delete")
    if cmd.get("let"):
        raise not_supported("delete with let")
    statements = _statements(cmd, "deletes")
    deleted = 0

    def run(index: int, spec: Any) -> None:
        nonlocal deleted
        deleted += delete_statement(ctx, coll, spec)

    errors = _run_batch(cmd, statements, run)
    return write_reply(deleted, errors)


def delete_statement(ctx: Context, coll: Collection, spec: Any) -> int:
    """One delete statement ``{q, limit, hint}``: how many documents it deleted."""
    if not isinstance(spec, dict):
        raise CommandFailed(9, "a delete statement must be an object")
    if spec.get("collation"):
        raise not_supported("delete with collation")
    if spec.get("limit", 0) not in (0, 1):
        raise CommandFailed(9, "The limit field in delete objects must be 0 or 1")
    just_one = spec.get("limit", 0) == 1
    q = spec.get("q") or {}
    hint = spec.get("hint") or None
    return crud.delete(coll, q, recorder(ctx, coll), just_one=just_one, hint=hint)
