"""find, getMore, killCursors, count, distinct and aggregate (plain pipelines or change streams)."""

from __future__ import annotations

from typing import Any

from reactor.testing.double.changestream import ChangeStream, check_read_concern, open_stream
from reactor.testing.double.context import Context, command
from reactor.testing.double.cursors import cursor_reply, first_batch
from reactor.testing.double.delivery import next_batch
from reactor.testing.double.engine import query
from reactor.testing.double.engine.aggregation import run_pipeline
from reactor.testing.double.engine.distinct import distinct_values
from reactor.testing.double.engine.projection import compile_projection
from reactor.testing.double.replies import CommandFailed, Doc, not_supported

DEFAULT_AWAIT_MS = 1000
_UNSUPPORTED_FIND_OPTIONS = ("collation", "tailable", "awaitData", "min", "max", "returnKey", "let")


def _batch_size(cmd: Doc, key: str = "batchSize") -> int | None:
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
    return first_batch(ctx.backend.cursors, namespace, docs, _batch_size(cmd), single_batch=single)


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
    batch = cursor.take(_batch_size(cmd))
    if not cursor.docs:
        ctx.backend.cursors.discard(cursor_id)
        cursor_id = 0
    return cursor_reply(cursor.namespace, cursor_id, batch, "nextBatch")


async def _change_stream_more(ctx: Context, cursor_id: int, stream: ChangeStream, cmd: Doc) -> Doc:
    max_wait_s = int(cmd.get("maxTimeMS") or DEFAULT_AWAIT_MS) / 1000
    return await next_batch(ctx, cursor_id, stream, _batch_size(cmd), max_wait_s)


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


@command("aggregate")
async def aggregate(ctx: Context, cmd: Doc) -> Doc:
    pipeline = cmd.get("pipeline")
    if not isinstance(pipeline, list):
        raise CommandFailed(14, "'pipeline' option must be specified as an array")
    cursor_options = cmd.get("cursor")
    if not isinstance(cursor_options, dict):
        raise CommandFailed(9, "The 'cursor' option is required, except for aggregate with explain")
    batch_size = _batch_size(cursor_options)
    if pipeline and isinstance(pipeline[0], dict) and "$changeStream" in pipeline[0]:
        return _open_change_stream(ctx, cmd, pipeline, batch_size)
    if any(isinstance(stage, dict) and "$changeStream" in stage for stage in pipeline):
        raise CommandFailed(40602, "$changeStream is only valid as the first stage in a pipeline")
    if not isinstance(cmd.get("aggregate"), str):
        raise not_supported("aggregate: 1 without $changeStream")
    for option in ("explain", "collation", "let"):
        if cmd.get(option):
            raise not_supported(f"aggregate with {option}")
    _check_write_stage_concern(cmd, pipeline)
    name = ctx.name(cmd, "aggregate")
    docs = run_pipeline(ctx.backend.catalog, ctx.db, name, pipeline)
    return first_batch(ctx.backend.cursors, f"{ctx.db}.{name}", docs, batch_size)


def _check_write_stage_concern(cmd: Doc, pipeline: list[Any]) -> None:
    """``$out``/``$merge`` refuse a linearizable read concern with 72, as on MongoDB."""
    concern = cmd.get("readConcern")
    if not isinstance(concern, dict) or concern.get("level") != "linearizable":
        return
    for stage in pipeline:
        for name in ("$out", "$merge"):
            if isinstance(stage, dict) and name in stage:
                raise CommandFailed(
                    72, f"{name} cannot be used with a 'linearizable' read concern level"
                )


def _open_change_stream(ctx: Context, cmd: Doc, pipeline: list[Any], batch_size: int | None) -> Doc:
    target = cmd.get("aggregate")
    if isinstance(target, str):
        coll: str | None = ctx.name(cmd, "aggregate")
    elif target == 1:
        coll = None
    else:
        raise CommandFailed(73, f"invalid aggregate target: {target!r}")
    check_read_concern(cmd)
    backend = ctx.backend
    stream = open_stream(backend.log, ctx.db, coll, pipeline[0]["$changeStream"], pipeline[1:])
    batch = stream.collect(backend.log, backend.lookup, batch_size)
    cursor_id = 0 if stream.invalidated else backend.cursors.add(stream)
    token = stream.position.token()
    return cursor_reply(stream.namespace, cursor_id, batch, "firstBatch", token)
