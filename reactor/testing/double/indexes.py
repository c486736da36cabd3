"""createIndexes, listIndexes and dropIndexes over the engine's indexes."""

from __future__ import annotations

from typing import Any

from reactor.testing.double.context import Context, command
from reactor.testing.double.cursors import first_batch
from reactor.testing.double.ddl_events import record_create_indexes, record_drop_index
from reactor.testing.double.engine.collection import Collection, DuplicateKey
from reactor.testing.double.engine.index import ID_SPEC, SPECIAL_KINDS, IndexSpec
from reactor.testing.double.engine.matcher import compile_filter
from reactor.testing.double.replies import CommandFailed, Doc, not_supported

_KNOWN_OPTIONS = {"key", "name", "v", "background", "ns", "unique", "sparse", "dropDups"}
_KNOWN_OPTIONS |= {"expireAfterSeconds", "partialFilterExpression", "hidden"}
_ECHOED_OPTIONS = ("background",)  # accepted, without effect, and listed back as given


@command("createIndexes")
async def create_indexes(ctx: Context, cmd: Doc) -> Doc:
    name = ctx.name(cmd, "createIndexes")
    existed = ctx.backend.catalog.get(ctx.db, name) is not None
    specs = cmd.get("indexes")
    if not isinstance(specs, list) or not specs:
        raise CommandFailed(2, "Must specify at least one index to create")
    parsed = [_parse(spec) for spec in specs]
    coll = ctx.collection(cmd, "createIndexes")
    before = len(coll.indexes)
    fresh = [spec for spec in parsed if _is_new(coll, spec)]
    _build_all(coll, fresh)
    record_create_indexes(ctx, name, [spec.info() for spec in fresh])
    reply: Doc = {
        "createdCollectionAutomatically": not existed,
        "numIndexesBefore": before,
        "numIndexesAfter": len(coll.indexes),
    }
    if len(coll.indexes) == before:
        reply["note"] = "all indexes already exist"
    return reply


def _parse(spec: Any) -> IndexSpec:
    if not isinstance(spec, dict) or not isinstance(spec.get("key"), dict) or not spec["key"]:
        raise CommandFailed(9, f"invalid index specification: {spec!r}")
    if not isinstance(spec.get("name"), str) or not spec["name"]:
        raise CommandFailed(9, "index specification must have a name")
    for option in spec:
        if option not in _KNOWN_OPTIONS:
            raise not_supported(f"the index option {option!r}")
    for field, kind in spec["key"].items():
        if isinstance(kind, str) and kind not in SPECIAL_KINDS:
            raise not_supported(f"{kind!r} indexes ({field})")
    partial = spec.get("partialFilterExpression")
    if partial is not None:
        compile_filter(partial)
    expire = spec.get("expireAfterSeconds")
    return IndexSpec(
        name=spec["name"],
        key=tuple(spec["key"].items()),
        unique=bool(spec.get("unique")),
        sparse=bool(spec.get("sparse")),
        partial=partial,
        expire_after_s=expire,
        hidden=bool(spec.get("hidden")),
        echoed=tuple((name, spec[name]) for name in _ECHOED_OPTIONS if name in spec),
    )


def _is_new(coll: Collection, spec: IndexSpec) -> bool:
    """False for an identical existing index; 85/86 for a conflicting one (MongoDB 5.0+).

    As ``IndexDescriptor::compareIndexOptions``: the signature (key, unique, sparse, partial
    filter) tells indexes apart, so several may share a key pattern; the other options
    (``expireAfterSeconds``, ``hidden``) only tell an identical index from an equivalent one.
    """
    same_name = coll.indexes.get(spec.name)
    if same_name is not None:
        existing = same_name.spec
        if _signature(existing) != _signature(spec):
            raise CommandFailed(
                86,
                "An existing index has the same name as the requested index. When index names "
                "are not specified, they are auto generated and can cause conflicts. Requested "
                f"index: {spec.info()}, existing index: {existing.info()}",
            )
        if _options(existing) != _options(spec):
            raise CommandFailed(
                85,
                "An equivalent index already exists with the same name but different options. "
                f"Requested index: {spec.info()}, existing index: {existing.info()}",
            )
        return False
    for index in coll.indexes.values():
        if _signature(index.spec) != _signature(spec):
            continue
        if _options(index.spec) == _options(spec):
            raise CommandFailed(
                85, f"Index already exists with a different name: {index.spec.name}"
            )
        raise CommandFailed(
            85,
            "An equivalent index already exists with a different name and options. Requested "
            f"index: {spec.info()}, existing index: {index.spec.info()}",
        )
    return True


def _signature(spec: IndexSpec) -> tuple[Any, ...]:
    """What tells two indexes apart (the _id index is unique whatever it says)."""
    unique = spec.unique or spec.key == ID_SPEC.key
    return spec.key, unique, spec.sparse, spec.partial


def _options(spec: IndexSpec) -> tuple[Any, ...]:
    """The options that make an index of the same signature identical or only equivalent."""
    return spec.expire_after_s, spec.hidden


def _build_all(coll: Collection, specs: list[IndexSpec]) -> None:
    """Build every index of one command, or none of them (as MongoDB commits them together)."""
    built: list[str] = []
    try:
        for spec in specs:
            coll.add_index(spec)
            built.append(spec.name)
    except CommandFailed as exc:
        for name in built:
            coll.drop_index(name)
        if isinstance(exc, DuplicateKey):
            message = f"Index build failed: {exc.message}"
            raise CommandFailed(11000, message, extra=exc.extra) from exc
        raise


@command("listIndexes")
async def list_indexes(ctx: Context, cmd: Doc) -> Doc:
    coll = _existing(ctx, cmd, "listIndexes")
    batch_size = (cmd.get("cursor") or {}).get("batchSize")
    infos = [index.spec.info() for index in coll.indexes.values()]
    return first_batch(ctx.backend.cursors, coll.namespace, infos, batch_size)


@command("dropIndexes", "deleteIndexes")
async def drop_indexes(ctx: Context, cmd: Doc) -> Doc:
    coll = _existing(ctx, cmd, next(iter(cmd)))
    infos = {name: index.spec.info() for name, index in coll.indexes.items()}
    target = cmd.get("index")
    if target == "*":
        for name in [name for name in coll.indexes if name != "_id_"]:
            coll.drop_index(name)
    else:
        for each in target if isinstance(target, list) else [target]:
            _drop_index(coll, each)
    for name, info in infos.items():
        if name not in coll.indexes:
            record_drop_index(ctx, coll.name, info)
    return {"nIndexesWas": len(infos)}


def _drop_index(coll: Collection, target: Any) -> None:
    if isinstance(target, dict):
        names = [n for n, index in coll.indexes.items() if dict(index.spec.key) == target]
        if not names:
            raise CommandFailed(27, f"can't find index with key: {target}")
        target = names[0]
    if not isinstance(target, str):
        raise CommandFailed(14, f"invalid index name: {target!r}")
    if target == "_id_":
        raise CommandFailed(72, "cannot drop _id index")
    if target not in coll.indexes:
        raise CommandFailed(27, f"index not found with name [{target}]")
    coll.drop_index(target)


def _existing(ctx: Context, cmd: Doc, key: str) -> Collection:
    coll = ctx.existing(cmd, key)
    if coll is None:
        raise CommandFailed(26, f"ns does not exist: {ctx.db}.{cmd.get(key)}")
    return coll
