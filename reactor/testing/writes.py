"""insert, update and delete: each write goes through mongomock and becomes a change event."""

from __future__ import annotations

from typing import Any

from reactor.testing.context import Context, command
from reactor.testing.ddl_events import ensure_created
from reactor.testing.lookup import by_id, matching, pinned
from reactor.testing.replies import CommandFailed, Doc, not_supported
from reactor.testing.update_description import same
from reactor.testing.write_errors import update_candidate, write_error


def is_replacement(update: Any) -> bool:
    return isinstance(update, dict) and not any(key.startswith("$") for key in update)


def record_change(
    ctx: Context, coll: Any, before: Doc, replacement: bool, update: Any = None
) -> None:
    """Record the update or replace of ``before``'s document, if it changed at all.

    ``update`` (the update document or pipeline) lets the event describe the change as MongoDB
    does; without it the description is a structural diff.
    """
    after = by_id(coll, before["_id"])
    if after is not None and not same(after, before):  # 1 -> 1.0 is a change, as on MongoDB
        operation = "replace" if replacement else "update"
        change = None if replacement else update
        ctx.backend.log.record(
            operation, ctx.db, coll.name, before=before, after=after, update=change
        )


def record_insert(ctx: Context, coll: Any, doc_id: Any) -> None:
    after = by_id(coll, doc_id)
    ctx.backend.log.record("insert", ctx.db, coll.name, after=after)


def write_reply(n: int, errors: list[Doc], **extra: Any) -> Doc:
    reply: Doc = {"n": n, **extra}
    if errors:
        reply["writeErrors"] = errors
    return reply


@command("insert")
async def insert(ctx: Context, cmd: Doc) -> Doc:
    coll = ctx.collection(cmd, "insert")
    if cmd.get("documents"):
        ensure_created(ctx, coll.name)
    n, errors = 0, []
    for index, doc in enumerate(cmd.get("documents") or []):
        try:
            doc_id = coll.insert_one(doc).inserted_id
        except Exception as exc:
            errors.append(write_error(index, exc, coll, doc))
            if cmd.get("ordered", True):
                break
            continue
        n += 1
        record_insert(ctx, coll, doc_id)
    return write_reply(n, errors)


@command("update")
async def update(ctx: Context, cmd: Doc) -> Doc:
    coll = ctx.collection(cmd, "update")
    if cmd.get("let"):
        raise not_supported("update with let")
    matched, modified, upserted, errors = 0, 0, [], []
    for index, spec in enumerate(cmd.get("updates") or []):
        try:
            n, n_modified, upserted_id = _update_one_spec(ctx, coll, spec)
        except Exception as exc:
            errors.append(write_error(index, exc, coll, update_candidate(spec.get("u"))))
            if cmd.get("ordered", True):
                break
            continue
        matched, modified = matched + n, modified + n_modified
        if upserted_id is not None:
            upserted.append({"index": index, "_id": upserted_id})
    extra: Doc = {"nModified": modified}
    if upserted:
        extra["upserted"] = upserted
    return write_reply(matched + len(upserted), errors, **extra)


def _update_one_spec(ctx: Context, coll: Any, spec: Doc) -> tuple[int, int, Any]:
    query, change = spec.get("q") or {}, spec.get("u")
    multi, upsert = bool(spec.get("multi")), bool(spec.get("upsert"))
    for option in ("arrayFilters", "collation", "c"):
        if spec.get(option):
            raise not_supported(f"update with {option}")
    replacement = is_replacement(change)
    if replacement and multi:
        raise CommandFailed(9, "multi update is not supported for replacement-style update")
    befores = matching(coll, query, limit=0 if multi else 1)
    if upsert and not befores:
        ensure_created(ctx, coll.name)
    selector = query if multi or not befores else pinned(query, befores[0]["_id"])
    try:
        if replacement:
            result = coll.replace_one(selector, change, upsert=upsert)
        elif multi:
            result = coll.update_many(selector, change, upsert=upsert)
        else:
            result = coll.update_one(selector, change, upsert=upsert)
    finally:
        for before in befores:
            record_change(ctx, coll, before, replacement, change)
    if result.upserted_id is not None:
        record_insert(ctx, coll, result.upserted_id)
        return 0, 0, result.upserted_id
    return result.matched_count, result.modified_count, None


@command("delete")
async def delete(ctx: Context, cmd: Doc) -> Doc:
    coll = ctx.collection(cmd, "delete")
    n, errors = 0, []
    for index, spec in enumerate(cmd.get("deletes") or []):
        try:
            n += _delete_one_spec(ctx, coll, spec)
        except Exception as exc:
            errors.append(write_error(index, exc, coll, {}))
            if cmd.get("ordered", True):
                break
    return write_reply(n, errors)


def _delete_one_spec(ctx: Context, coll: Any, spec: Doc) -> int:
    if spec.get("collation"):
        raise not_supported("delete with collation")
    limit = spec.get("limit", 0)
    victims = matching(coll, spec.get("q") or {}, limit=1 if limit == 1 else 0)
    if victims:
        coll.delete_many({"_id": {"$in": [before["_id"] for before in victims]}})
    for before in victims:
        ctx.backend.log.record("delete", ctx.db, coll.name, before=before)
    return len(victims)
