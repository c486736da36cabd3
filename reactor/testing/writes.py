"""insert, update and delete: each statement runs through the engine and becomes change events."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from reactor.testing.context import Context, command
from reactor.testing.engine import crud
from reactor.testing.engine.collection import Collection
from reactor.testing.engine.updates import parse_update
from reactor.testing.replies import CommandFailed, Doc, not_supported
from reactor.testing.write_errors import write_error


def recorder(ctx: Context, coll: Collection, replacement: bool = False) -> crud.OnChange:
    """The ``on_change`` callback that appends each document write to the change-event log."""

    def on_change(before: Doc | None, after: Doc | None) -> None:
        if before is None:
            operation = "insert"
        elif after is None:
            operation = "delete"
        else:
            operation = "replace" if replacement else "update"
        ctx.record(operation, coll, before, after)

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
    coll = ctx.collection(cmd, "insert")
    documents = _statements(cmd, "documents")
    on_change = recorder(ctx, coll)
    inserted = 0

    def run(index: int, doc: Any) -> None:
        nonlocal inserted
        if not isinstance(doc, dict):
            raise CommandFailed(2, "a document to insert must be an object")
        crud.insert(coll, doc, on_change)
        inserted += 1

    errors = _run_batch(cmd, documents, run)
    return write_reply(inserted, errors)


@command("update")
async def update(ctx: Context, cmd: Doc) -> Doc:
    coll = ctx.collection(cmd, "update")
    if cmd.get("let"):
        raise not_supported("update with let")
    statements = _statements(cmd, "updates")
    matched, modified, upserted = 0, 0, []

    def run(index: int, spec: Any) -> None:
        nonlocal matched, modified
        result = _update_one_spec(ctx, coll, spec)
        if result.upserted:
            upserted.append({"index": index, "_id": result.upserted_id})
        matched, modified = matched + result.matched, modified + result.modified

    errors = _run_batch(cmd, statements, run)
    extra: Doc = {"nModified": modified}
    if upserted:
        extra["upserted"] = upserted
    return write_reply(matched + len(upserted), errors, **extra)


def _update_one_spec(ctx: Context, coll: Collection, spec: Any) -> crud.UpdateResult:
    if not isinstance(spec, dict):
        raise CommandFailed(9, "an update statement must be an object")
    for option in ("arrayFilters", "collation", "c"):
        if spec.get(option):
            raise not_supported(f"update with {option}")
    change = parse_update(spec.get("u"))
    return crud.update(
        coll,
        spec.get("q") or {},
        change,
        recorder(ctx, coll, change.is_replacement),
        multi=bool(spec.get("multi")),
        upsert=bool(spec.get("upsert")),
        sort=spec.get("sort") or None,
        hint=spec.get("hint") or None,
    )


@command("delete")
async def delete(ctx: Context, cmd: Doc) -> Doc:
    coll = ctx.existing(cmd, "delete")
    statements = _statements(cmd, "deletes")
    deleted = 0

    def run(index: int, spec: Any) -> None:
        nonlocal deleted
        if not isinstance(spec, dict):
            raise CommandFailed(9, "a delete statement must be an object")
        if spec.get("collation"):
            raise not_supported("delete with collation")
        if spec.get("limit", 0) not in (0, 1):
            raise CommandFailed(9, "The limit field in delete objects must be 0 or 1")
        if coll is not None:
            on_change = recorder(ctx, coll)
            just_one = spec.get("limit", 0) == 1
            q = spec.get("q") or {}
            deleted += crud.delete(
                coll, q, on_change, just_one=just_one, hint=spec.get("hint") or None
            )

    errors = _run_batch(cmd, statements, run)
    return write_reply(deleted, errors)
