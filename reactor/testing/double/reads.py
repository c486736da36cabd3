"""find, getMore, killCursors, count and distinct (``aggregate`` is :mod:`aggregate`)."""

from __future__ import annotations

from reactor.testing.double.changestream import ChangeStream
from reactor.testing.double.context import Context, command
from reactor.testing.double.cursors import cursor_reply, first_batch
from reactor.testing.double.delivery import next_batch
from reactor.testing.double.engine import query
from reactor.testing.double.engine.distinct import distinct_values
from reactor.testing.double.engine.projection import compile_projection
from reactor.testing.double.replies import CommandFailed, Doc, not_supported

DEFAULT_AWAIT_MS = 1000
_UNSUPPORTED_FIND_OPTIONS = ("collation", "tailable", "awaitData", "min", "max", "returnKey", "let")


def batch_size_of(cmd: Doc, key: str = "batchSize") -> int | None:
    size = cmd.get(key)
    if size is not None and (not isinstance(size, int) or size < 0):
        raise CommandFailed(2, f"{key} must be a non-negative integer")
    return size


@command("find")
async def find(ctx: Context, cmd: Doc) -> Doc:
    for option in _UNSUPPORTED_FIND_OPTIONS:
        if cmd.get(option):
            raise not_supported(f"find with {option}")
    coll = ctx.existing(cmd, "find")
    spec = cmd.get("filter") or {}
    limit = int(cmd.get("limit") or 0)
    project = compile_projection(cmd.get("projection"), spec)
    found = query.find(
        coll,
        spec,
        sort=cmd.get("sort") or None,
        skip=int(cmd.get("skip") or 0),
        limit=abs(limit),
        hint=cmd.get("hint") or None,
    )
    docs = [doc if project is None else project(doc) for _, doc in found]
    single = bool(cmd.get("singleBatch")) or limit < 0
    namespace = f"{ctx.db}.{cmd['find']}"
    return first_batch(
        ctx.backend.cursors, namespace, docs, batch_size_of(cmd), single_batch=single
    )


@command("getMore")
async def get_more(ctx: Context, cmd: Doc) -> Doc:
    cursor_id = cmd.get("getMore")
    if not isinstance(cursor_id, int):
        raise CommandFailed(14, "getMore must be a cursor id (int64)")
    cursor = ctx.backend.cursors.get(cursor_id)
    if not cmd.get("batchSize"):  # absent or 0: as many as fit
        cmd = {**cmd, "batchSize": None}
    if isinstance(cursor, ChangeStream):
        return await _change_stream_more(ctx, cursor_id, cursor, cmd)
    batch = cursor.take(batch_size_of(cmd))
    if not cursor.docs:
        ctx.backend.cursors.discard(cursor_id)
        cursor_id = 0
    return cursor_reply(cursor.namespace, cursor_id, batch, "nextBatch")


async def _change_stream_more(ctx: Context, cursor_id: int, stream: ChangeStream, cmd: Doc) -> Doc:
    max_wait_s = int(cmd.get("maxTimeMS") or DEFAULT_AWAIT_MS) / 1000
    return await next_batch(ctx, cursor_id, stream, batch_size_of(cmd), max_wait_s)


@command("killCursors")
async def kill_cursors(ctx: Context, cmd: Doc) -> Doc:
    killed: list[int] = []
    not_found: list[int] = []
    for cursor_id in cmd.get("cursors") or []:
        (killed if ctx.backend.cursors.discard(cursor_id) else not_found).append(cursor_id)
    return {
        "cursorsKilled": killed,
        "cursorsNotFound": not_found,
        "cursorsAlive": [],
        "cursorsUnknown": [],
    }


@command("count")
async def count(ctx: Context, cmd: Doc) -> Doc:
    if cmd.get("collation"):
        raise not_supported("count with collation")
    coll = ctx.existing(cmd, "count")
    skip = int(cmd.get("skip") or 0)
    limit = abs(int(cmd.get("limit") or 0))
    return {
        "n": query.count(
            coll, cmd.get("query") or {}, skip=skip, limit=limit, hint=cmd.get("hint") or None
        )
    }


@command("distinct")
async def distinct(ctx: Context, cmd: Doc) -> Doc:
    if not isinstance(cmd.get("key"), str):
        raise CommandFailed(14, "distinct key must be a string")
    if cmd.get("collation"):
        raise not_supported("distinct with collation")
    coll = ctx.existing(cmd, "distinct")
    docs = [
        doc for _, doc in query.find(coll, cmd.get("query") or {}, hint=cmd.get("hint") or None)
    ]
    return {"values": distinct_values(docs, cmd["key"])}
