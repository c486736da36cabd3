"""Writing a pipeline's output with ``$merge``, as MongoDB 8.0's merge processor writes it.

Each output document becomes a write keyed by its ``on`` fields (an ``_id`` is generated first
when ``on`` includes ``_id`` and the document has none; a missing, null or array ``on`` value
fails with 51132/51185). The writes go in batches of at most 100,000 documents or 16 MiB, each
batch as one *unordered* ``update`` (or, for ``whenMatched: fail``, ``insert``) command would:

- ``replace``: the matched document is replaced (its ``_id`` stays; another ``_id`` fails with
  66); unmatched ones are inserted with a new ``_id`` when ``whenNotMatched`` is ``insert``;
- ``merge``: ``{$set: <document>}``; ``keepExisting``: ``{$setOnInsert: <document>}``;
- a pipeline: run on the matched document with ``$$new`` (and ``let``) bound to constants from
  the output document; unmatched documents are inserted as they are;
- ``fail``: every document is inserted, so a match fails with 11000.

Every write goes through the collection's unique indexes and is reported through the caller's
``on_change`` callbacks, as the ``update`` and ``insert`` commands report theirs. A batch runs
every write, then fails with the first error (with MongoDB's context) or, when
``whenNotMatched`` is ``fail`` and a document matched nothing, with 13113. Every error here is
an execution error, so it carries MongoDB's ``PlanExecutor error during aggregation`` prefix.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import bson
from bson import ObjectId

from reactor.testing.double.engine import crud, query
from reactor.testing.double.engine.collection import Collection
from reactor.testing.double.engine.expressions import evaluate
from reactor.testing.double.engine.merge_spec import MergeSpec
from reactor.testing.double.engine.paths import MISSING
from reactor.testing.double.engine.types import is_number
from reactor.testing.double.engine.updates import Update, apply_update, parse_update
from reactor.testing.double.engine.variables import bind, check_defined
from reactor.testing.double.replies import CommandFailed, Doc

MAX_BATCH_COUNT = 100_000
MAX_BATCH_BYTES = 16 * 1024 * 1024
# (collection, the statement's update or None for an insert, replacement?) -> on_change
OnChangeFor = Callable[[Collection, Any, bool], crud.OnChange]
_EXECUTION = "PlanExecutor error during aggregation :: caused by :: "
_IMMUTABLE = (
    "$merge failed to update the matching document, did you attempt to modify the _id or the "
    "shard key?"
)


@dataclass(frozen=True)
class _Write:
    """One output document: its ``on`` values (the statement's query) and the document."""

    query: Doc
    doc: Doc


def check_on_fields(target: Collection | None, spec: MergeSpec) -> None:
    """51183 unless ``on`` is ``_id`` or a unique, non-partial index has exactly its fields."""
    if spec.on is None:
        return
    fields = set(spec.on)
    if target is None:
        supported = fields == {"_id"}
    else:
        supported = any(
            index.spec.unique
            and index.spec.partial is None
            and all(is_number(value) for _, value in index.spec.key)
            and {name for name, _ in index.spec.key} == fields
            for index in target.indexes.values()
        )
    if not supported:
        raise CommandFailed(51183, "Cannot find index to verify that join fields will be unique")


def merge_into(
    spec: MergeSpec,
    docs: list[Doc],
    open_target: Callable[[], Collection],
    on_change_for: OnChangeFor,
) -> None:
    """Write ``docs`` into the target ``open_target`` gives (called at the first batch)."""
    try:
        for batch in _batches(spec, docs):
            _flush(spec, batch, open_target(), on_change_for)
    except CommandFailed as exc:
        raise CommandFailed(
            exc.code, _EXECUTION + exc.message, labels=exc.labels, extra=exc.extra
        ) from exc


def _batches(spec: MergeSpec, docs: list[Doc]) -> Iterator[list[_Write]]:
    """The writes, batched as MongoDB's writer stage batches them (a bad document ends it)."""
    batch: list[_Write] = []
    size = 0
    for doc in docs:
        write = _write_of(spec, doc)
        doc_size = len(bson.encode(write.doc))
        if batch and (len(batch) >= MAX_BATCH_COUNT or size + doc_size > MAX_BATCH_BYTES):
            yield batch
            batch, size = [], 0
        batch.append(write)
        size += doc_size
    if batch:
        yield batch


def _write_of(spec: MergeSpec, doc: Doc) -> _Write:
    if "_id" in spec.on_fields and "_id" not in doc:
        doc = {"_id": ObjectId(), **doc}
    key: Doc = {}
    for path in spec.on_fields:
        value: Any = doc
        for part in path.split("."):
            value = value.get(part, MISSING) if isinstance(value, dict) else MISSING
        if isinstance(value, list):
            raise CommandFailed(51185, f"$merge write error: 'on' field '{path}' is an array")
        if value is MISSING or value is None:
            raise CommandFailed(
                51132,
                f"$merge write error: 'on' field '{path}' cannot be missing, null, undefined "
                "or an array",
            )
        key[path] = value
    return _Write(key, doc)


def _flush(
    spec: MergeSpec, batch: list[_Write], coll: Collection, on_change_for: OnChangeFor
) -> None:
    """One unordered batch: every write runs, then the first error (or 13113) is raised."""
    matched = 0
    first_error: CommandFailed | None = None
    for write in batch:
        try:
            matched += _write(spec, write, coll, on_change_for)
        except CommandFailed as exc:
            first_error = first_error or exc
    if first_error is not None:
        raise _in_context(spec, first_error)
    if spec.when_not_matched == "fail" and matched < len(batch):
        raise CommandFailed(
            13113,
            "$merge could not find a matching document in the target collection for at least "
            "one document in the source collection",
        )


def _write(spec: MergeSpec, write: _Write, coll: Collection, on_change_for: OnChangeFor) -> bool:
    """Store one document as ``spec`` says; whether it matched a document of the target."""
    if spec.when_matched == "fail":
        crud.insert(coll, dict(write.doc), on_change_for(coll, None, False))
        return False
    statement, update = _statement(spec, write.doc)
    on_change = on_change_for(coll, statement, spec.when_matched == "replace")
    found = query.find(coll, write.query, limit=1)
    if found:
        seq, before = found[0]
        crud.replace_record(coll, seq, before, apply_update(before, update, write.query), on_change)
        return True
    if not spec.inserts:
        return False
    if spec.when_matched == "pipeline":  # MongoDB inserts the supplied document ($$new)
        crud.insert(coll, dict(write.doc), on_change_for(coll, None, False))
    else:
        crud.insert_upserted(coll, write.query, update, on_change)
    return False


def _statement(spec: MergeSpec, doc: Doc) -> tuple[Any, Update]:
    """The update statement a document becomes, and that statement parsed."""
    if spec.when_matched == "replace":
        return doc, Update(replacement=doc)
    if spec.when_matched in ("merge", "keepExisting"):
        operator = "$set" if spec.when_matched == "merge" else "$setOnInsert"
        statement: Any = {operator: doc}
    else:
        statement = bind(spec.pipeline or [], _variables(spec, doc))
        check_defined(statement)
    return statement, parse_update(statement)


def _variables(spec: MergeSpec, doc: Doc) -> dict[str, Any]:
    """``let`` evaluated on the output document; ``new`` is the document itself."""
    values: dict[str, Any] = {}
    for name, expression in (spec.let or {}).items():
        if name != "new":
            try:
                values[name] = evaluate(expression, doc)
            except KeyError:
                values[name] = MISSING
    if spec.let is None or "new" in spec.let or spec.inserts:
        values["new"] = doc
    return values


def _in_context(spec: MergeSpec, exc: CommandFailed) -> CommandFailed:
    """A write error with the context MongoDB's ``$merge`` adds to it."""
    if exc.code == 66:
        context = _IMMUTABLE
    elif exc.code == 11000:
        pattern = set(exc.extra.get("keyPattern") or {})
        if spec.when_matched == "fail" and pattern == set(spec.on_fields):
            context = (
                "$merge with whenMatched: fail found an existing document with the same values "
                "for the 'on' fields"
            )
        else:
            context = "$merge failed due to a DuplicateKey error"
    else:
        return exc
    message = f"{context} :: caused by :: {exc.message}"
    return CommandFailed(exc.code, message, labels=exc.labels, extra=exc.extra)
