"""createIndexes, listIndexes and dropIndexes; mongomock enforces unique and sparse indexes."""

from __future__ import annotations

from typing import Any

from pymongo.errors import DuplicateKeyError, OperationFailure

from reactor.testing.context import Context, command
from reactor.testing.cursors import first_batch
from reactor.testing.ddl_events import record_create, record_create_indexes, record_drop_index
from reactor.testing.replies import CommandFailed, Doc, not_supported

_PASSED_OPTIONS = ("unique", "sparse", "expireAfterSeconds", "partialFilterExpression")
_IGNORED_OPTIONS = {"key", "name", "v", "background", "hidden"}


@command("createIndexes")
async def create_indexes(ctx: Context, cmd: Doc) -> Doc:
    coll = ctx.collection(cmd, "createIndexes")
    existed = coll.name in ctx.backend.collection_names(ctx.db)
    if not existed:
        record_create(ctx, coll.name)
    names = set(coll.index_information()) if existed else {"_id_"}
    before = len(names)
    specs = cmd.get("indexes") or []
    for spec in specs:
        _create_index(coll, spec)
    built = set(coll.index_information()) - names
    record_create_indexes(ctx, coll.name, [spec for spec in specs if spec["name"] in built])
    after = len(coll.index_information())
    reply: Doc = {
        "createdCollectionAutomatically": not existed,
        "numIndexesBefore": before,
        "numIndexesAfter": after,
    }
    if after == before:
        reply["note"] = "all indexes already exist"
    return reply


def _create_index(coll: Any, spec: Any) -> None:
    if not isinstance(spec, dict) or not isinstance(spec.get("key"), dict):
        raise CommandFailed(9, f"invalid index specification: {spec!r}")
    if not isinstance(spec.get("name"), str):
        raise CommandFailed(9, "index specification must have a name")
    for option in spec:
        if option not in _IGNORED_OPTIONS and option not in _PASSED_OPTIONS:
            raise not_supported(f"the index option {option!r}")
    options = {name: spec[name] for name in _PASSED_OPTIONS if name in spec}
    try:
        coll.create_index(list(spec["key"].items()), name=spec["name"], **options)
    except DuplicateKeyError as exc:
        message = f"E11000 duplicate key error collection: {coll.full_name} index: {spec['name']}"
        raise CommandFailed(11000, message) from exc
    except OperationFailure as exc:
        raise CommandFailed(85, str(exc)) from exc


@command("listIndexes")
async def list_indexes(ctx: Context, cmd: Doc) -> Doc:
    coll = _existing(ctx, cmd, "listIndexes")
    batch_size = (cmd.get("cursor") or {}).get("batchSize")
    return first_batch(ctx.backend.cursors, coll.full_name, list(coll.list_indexes()), batch_size)


@command("dropIndexes", "deleteIndexes")
async def drop_indexes(ctx: Context, cmd: Doc) -> Doc:
    coll = _existing(ctx, cmd, next(iter(cmd)))
    infos = coll.index_information()
    target = cmd.get("index")
    if target == "*":
        coll.drop_indexes()
    else:
        for name in target if isinstance(target, list) else [target]:
            _drop_index(coll, name)
    remaining = coll.index_information()
    for name, info in infos.items():
        if name not in remaining:
            record_drop_index(ctx, coll.name, {"name": name, **info})
    return {"nIndexesWas": len(infos)}


def _drop_index(coll: Any, target: Any) -> None:
    if isinstance(target, dict):
        pattern = list(target.items())
        names = [n for n, info in coll.index_information().items() if info["key"] == pattern]
        if not names:
            raise CommandFailed(27, f"can't find index with key: {target}")
        target = names[0]
    if target == "_id_":
        raise CommandFailed(72, "cannot drop _id index")
    try:
        coll.drop_index(target)
    except OperationFailure as exc:
        raise CommandFailed(27, f"index not found with name [{target}]") from exc


def _existing(ctx: Context, cmd: Doc, key: str) -> Any:
    coll = ctx.collection(cmd, key)
    if coll.name not in ctx.backend.collection_names(ctx.db):
        raise CommandFailed(26, f"ns does not exist: {coll.full_name}")
    return coll
