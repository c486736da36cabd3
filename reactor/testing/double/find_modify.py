"""findAndModify: the atomic claim primitive, one matching document updated, replaced or removed."""

from __future__ import annotations

from typing import Any

from reactor.testing.double.context import Context, command
from reactor.testing.double.engine import crud, query
from reactor.testing.double.engine.collection import Collection
from reactor.testing.double.engine.projection import compile_projection
from reactor.testing.double.engine.updates import Update, apply_update, parse_update
from reactor.testing.double.replies import CommandFailed, Doc, not_supported
from reactor.testing.double.writes import recorder


@command("findAndModify", "findandmodify")
async def find_and_modify(ctx: Context, cmd: Doc) -> Doc:
    _check(cmd)
    spec = cmd.get("query") or {}
    change = None if cmd.get("remove") else parse_update(cmd["update"])
    project = compile_projection(cmd.get("fields"), spec)
    key = next(iter(cmd))
    upsert = change is not None and bool(cmd.get("upsert"))
    # only an upsert creates a missing collection, as on MongoDB
    coll = ctx.collection(cmd, key) if upsert else ctx.existing_or_empty(cmd, key)
    found = query.find(
        coll, spec, sort=cmd.get("sort") or None, limit=1, hint=cmd.get("hint") or None
    )
    target = found[0] if found else None
    if change is None:
        value, last_error = _remove(ctx, coll, target)
    else:
        value, last_error = _modify(
            ctx, coll, spec, (change, cmd["update"]), target, bool(cmd.get("new")), upsert
        )
    if value is not None and project is not None:
        value = project(value)
    return {"lastErrorObject": last_error, "value": value}


def _check(cmd: Doc) -> None:
    for option in ("arrayFilters", "collation", "let"):
        if cmd.get(option):
            raise not_supported(f"findAndModify with {option}")
    if cmd.get("remove") and ("update" in cmd or cmd.get("upsert")):
        raise CommandFailed(9, "Cannot specify both an update and remove=true")
    if not cmd.get("remove") and "update" not in cmd:
        raise CommandFailed(9, "Either an update or remove=true must be specified")
    if cmd.get("remove") and cmd.get("new"):
        raise CommandFailed(
            9,
            "Cannot specify both new=true and remove=true",
        )


def _remove(
    ctx: Context, coll: Collection, target: tuple[int, Doc] | None
) -> tuple[Doc | None, Doc]:
    if target is None:
        return None, {"n": 0}
    before = coll.delete(target[0])
    recorder(ctx, coll)(before, None)
    return before, {"n": 1}


def _modify(
    ctx: Context,
    coll: Collection,
    spec: Doc,
    update: tuple[Update, Any],
    target: tuple[int, Doc] | None,
    new: bool,
    upsert: bool,
) -> tuple[Doc | None, Doc]:
    """Update (or upsert) ``target``; ``update`` is the parsed update and the one sent."""
    change, sent = update
    on_change = recorder(ctx, coll, sent)
    if target is not None:
        seq, before = target
        after = apply_update(before, change, spec)
        crud.replace_record(coll, seq, before, after, on_change)
        return (after if new else before), {"n": 1, "updatedExisting": True}
    if not upsert:
        return None, {"n": 0, "updatedExisting": False}
    stored = crud.insert_upserted(coll, spec, change, on_change)
    last_error: Any = {"n": 1, "updatedExisting": False, "upserted": stored["_id"]}
    return (stored if new else None), last_error
