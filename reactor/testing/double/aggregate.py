"""aggregate: change streams, collection pipelines, ``$documents`` pipelines, and ``$merge``.

``aggregate: <collection>`` runs a pipeline over a collection; ``aggregate: 1`` runs one that
starts with ``$documents`` (MongoDB's other collectionless stages answer 238) or opens a change
stream. A final ``$merge`` is parsed and checked before anything runs (its spec, the unique index
behind its ``on`` fields, its target), then takes the documents the rest of the pipeline made and
writes them through the engine (:mod:`engine.merge`), with the change events and the implicit
creation of the target the ``insert`` and ``update`` commands would record, in the target's own
database. A pipeline that writes answers an empty cursor.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from reactor.testing.double.changestream import check_read_concern, open_stream
from reactor.testing.double.context import Context, command
from reactor.testing.double.cursors import cursor_reply, first_batch
from reactor.testing.double.engine.aggregation import check_positions, run_pipeline
from reactor.testing.double.engine.collection import Collection
from reactor.testing.double.engine.crud import OnChange
from reactor.testing.double.engine.merge import check_on_fields, merge_into
from reactor.testing.double.engine.merge_spec import MergeSpec, check_merge_target, parse_merge
from reactor.testing.double.engine.pipeline import split_stage
from reactor.testing.double.reads import batch_size_of
from reactor.testing.double.replies import CommandFailed, Doc, not_supported
from reactor.testing.double.writes import recorder

# Stages MongoDB runs with ``aggregate: 1`` and no collection; only $documents is the double's.
_COLLECTIONLESS = frozenset(
    {"$documents", "$currentOp", "$listLocalSessions", "$listCatalog", "$listClusterCatalog"}
    | {"$querySettings", "$queryStats", "$shardedDataDistribution"}
)


@command("aggregate")
async def aggregate(ctx: Context, cmd: Doc) -> Doc:
    pipeline = cmd.get("pipeline")
    if not isinstance(pipeline, list):
        raise CommandFailed(14, "'pipeline' option must be specified as an array")
    cursor_options = cmd.get("cursor")
    if not isinstance(cursor_options, dict):
        raise CommandFailed(9, "The 'cursor' option is required, except for aggregate with explain")
    batch_size = batch_size_of(cursor_options)
    if pipeline and isinstance(pipeline[0], dict) and "$changeStream" in pipeline[0]:
        return _open_change_stream(ctx, cmd, pipeline, batch_size)
    if any(isinstance(stage, dict) and "$changeStream" in stage for stage in pipeline):
        raise CommandFailed(40602, "$changeStream is only valid as the first stage in a pipeline")
    for option in ("explain", "collation", "let"):
        if cmd.get(option):
            raise not_supported(f"aggregate with {option}")
    _check_write_stage_concern(cmd, pipeline)
    merges = [parse_merge(stage["$merge"], ctx.db) for stage in pipeline if _is_merge(stage)]
    name = _source(ctx, cmd, pipeline)
    check_positions(pipeline)
    if merges:
        spec = merges[-1]
        check_on_fields(ctx.backend.catalog.get(spec.db, spec.coll), spec)
        check_merge_target(spec)
        pipeline = pipeline[:-1]
    docs = run_pipeline(ctx.backend.catalog, ctx.db, name, pipeline)
    if merges:
        _merge(ctx, merges[-1], docs)
        docs = []
    namespace = f"{ctx.db}.{name if name is not None else '$cmd.aggregate'}"
    return first_batch(ctx.backend.cursors, namespace, docs, batch_size)


def _is_merge(stage: Any) -> bool:
    return isinstance(stage, dict) and len(stage) == 1 and "$merge" in stage


def _source(ctx: Context, cmd: Doc, pipeline: list[Any]) -> str | None:
    """The collection the pipeline reads (None: ``aggregate: 1`` with ``$documents``)."""
    first = split_stage(pipeline[0])[0] if pipeline else None
    target = cmd.get("aggregate")
    if isinstance(target, str):
        name = ctx.name(cmd, "aggregate")
        if first in _COLLECTIONLESS:
            raise CommandFailed(73, f"'{first}' can only be run with {{aggregate: 1}}")
        return name
    if isinstance(target, bool) or target != 1:
        raise CommandFailed(
            9, "Invalid command format: the 'aggregate' field must specify a collection name or 1"
        )
    if first is None:
        raise CommandFailed(73, "{aggregate: 1} is not valid for an empty pipeline.")
    if first == "$documents":
        return None
    if first in _COLLECTIONLESS:
        raise not_supported(f"aggregate: 1 with {first}")
    raise CommandFailed(
        73, f"{{aggregate: 1}} is not valid for '{first}'; a collection is required."
    )


def _merge(ctx: Context, spec: MergeSpec, docs: list[Doc]) -> None:
    """Write ``docs`` as ``spec`` says, recording events in the target's database."""
    on_target = dataclasses.replace(ctx, db=spec.db)
    named = {"$merge": spec.coll}

    def open_target() -> Collection:
        if spec.inserts:
            return on_target.collection(named, "$merge")
        return on_target.existing_or_empty(named, "$merge")

    def on_change_for(coll: Collection, update: Any, replacement: bool) -> OnChange:
        return recorder(on_target, coll, update, replacement=replacement)

    merge_into(spec, docs, open_target, on_change_for)


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
