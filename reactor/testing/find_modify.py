"""findAndModify: the atomic claim primitive, one matching document updated, replaced or removed."""

from __future__ import annotations

from typing import Any

from pymongo.errors import DuplicateKeyError

from reactor.testing.context import Context, command
from reactor.testing.ddl_events import ensure_created
from reactor.testing.lookup import by_id, matching, pinned
from reactor.testing.reads import sort_spec
from reactor.testing.replies import CommandFailed, Doc, not_supported
from reactor.testing.stages import project
from reactor.testing.write_errors import duplicate_key, update_candidate
from reactor.testing.writes import is_replacement, record_change, record_insert


@command("findAndModify", "findandmodify")
async def find_and_modify(ctx: Context, cmd: Doc) -> Doc:
    coll = ctx.collection(cmd, next(iter(cmd)))
    _check(cmd)
    query = cmd.get("query") or {}
    found = matching(coll, query, sort=sort_spec(cmd.get("sort")), limit=1)
    target = found[0] if found else None
    try:
        if cmd.get("remove"):
            return _remove(ctx, coll, target, cmd)
        return _modify(ctx, coll, query, target, cmd)
    except DuplicateKeyError as exc:
        details = duplicate_key(coll, update_candidate(cmd.get("update")))
        raise CommandFailed(11000, details.pop("errmsg"), extra=details) from exc


def _check(cmd: Doc) -> None:
    for option in ("arrayFilters", "collation", "let", "hint"):
        if cmd.get(option):
            raise not_supported(f"findAndModify with {option}")
    if cmd.get("remove") and ("update" in cmd or cmd.get("upsert")):
        raise CommandFailed(9, "Cannot specify both an update and remove=true")
    if not cmd.get("remove") and "update" not in cmd:
        raise CommandFailed(9, "Either an update or remove=true must be specified")


def _remove(ctx: Context, coll: Any, target: Doc | None, cmd: Doc) -> Doc:
    if target is None:
        return _reply(0, None, cmd)
    coll.delete_one({"_id": target["_id"]})
    ctx.backend.log.record("delete", ctx.db, coll.name, before=target)
    return _reply(1, target, cmd)


def _modify(ctx: Context, coll: Any, query: Doc, target: Doc | None, cmd: Doc) -> Doc:
    change = cmd["update"]
    replacement = is_replacement(change)
    if target is not None:
        selector = pinned(query, target["_id"])
        if replacement:
            coll.replace_one(selector, change)
        else:
            coll.update_one(selector, change)
        record_change(ctx, coll, target, replacement, change)
        after = by_id(coll, target["_id"])
        return _reply(1, after if cmd.get("new") else target, cmd, updated_existing=True)
    if not cmd.get("upsert"):
        return _reply(0, None, cmd, updated_existing=False)
    ensure_created(ctx, coll.name)
    upsert = coll.replace_one if replacement else coll.update_one
    upserted_id = upsert(query, change, upsert=True).upserted_id
    record_insert(ctx, coll, upserted_id)
    value = by_id(coll, upserted_id) if cmd.get("new") else None
    return _reply(1, value, cmd, updated_existing=False, upserted=upserted_id)


def _reply(n: int, value: Doc | None, cmd: Doc, **last_error: Any) -> Doc:
    fields = cmd.get("fields")
    if value is not None and fields:
        value = project(value, fields)
    return {"lastErrorObject": {"n": n, **last_error}, "value": value}
