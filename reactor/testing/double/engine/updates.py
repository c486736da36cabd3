"""Update documents: parsed and checked once per command, applied to a copy per document.

Parsing happens before any document is looked at, so an unknown operator answers 9 even when
nothing matches, and two operators on overlapping paths answer 40, as on MongoDB. Applying works
on a copy: the caller stores the result only if every operator succeeded (and the unique indexes
and the 16 MiB limit agree), which makes every write atomic per document.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from bson import ObjectId

from reactor.testing.double.engine.conjuncts import conjuncts
from reactor.testing.double.engine.fieldpath import child_of, parent, put, remove
from reactor.testing.double.engine.matcher import is_operator_doc
from reactor.testing.double.engine.operators import OPERATORS, UpdateContext
from reactor.testing.double.engine.paths import MISSING, deep_copy, same, split
from reactor.testing.double.engine.pipeline import KNOWN_STAGES, apply_stage, split_stage
from reactor.testing.double.engine.positional import matched_position
from reactor.testing.double.replies import CommandFailed, Doc, not_supported

_PIPELINE_STAGES = {"$addFields", "$set", "$project", "$unset", "$replaceRoot", "$replaceWith"}


@dataclass
class Update:
    """A parsed update: a replacement document, operators, or an aggregation pipeline."""

    replacement: Doc | None = None
    operations: list[tuple[str, tuple[str, ...], Any]] = field(default_factory=list)
    pipeline: list[Any] | None = None

    @property
    def is_replacement(self) -> bool:
        return self.replacement is not None


def parse_update(spec: Any) -> Update:
    if isinstance(spec, list):
        for stage in spec:
            if not isinstance(stage, dict):
                raise CommandFailed(14, "Each element of the 'pipeline' array must be an object")
            name, _ = split_stage(stage)
            if name not in KNOWN_STAGES:
                raise CommandFailed(40324, f"Unrecognized pipeline stage name: '{name}'")
            if name not in _PIPELINE_STAGES:
                raise CommandFailed(72, f"{name} is not allowed to be used within an update")
        return Update(pipeline=spec)
    if not isinstance(spec, dict):
        raise CommandFailed(9, "Update argument must be either an object or an array")
    if not spec or not any(str(key).startswith("$") for key in spec):
        return Update(replacement=spec)
    operations = []
    for name, fields in spec.items():
        if name not in OPERATORS and name != "$rename":
            raise CommandFailed(
                9,
                f"Unknown modifier: {name}. Expected a valid update modifier or pipeline-style "
                "update specified as an array",
            )
        if not isinstance(fields, dict):
            raise CommandFailed(
                9,
                f"Modifiers operate on fields but we found another type: {{{name}: {fields!r}}}",
            )
        for path, arg in fields.items():
            operations.append((name, _checked_path(path), arg))
    _check_conflicts(operations)
    return Update(operations=operations)


def _checked_path(path: str) -> tuple[str, ...]:
    parts = split(path)
    if not path or "" in parts:
        raise CommandFailed(56, "An empty update path is not valid.")
    return parts


def _check_conflicts(operations: list[tuple[str, tuple[str, ...], Any]]) -> None:
    paths: list[tuple[str, ...]] = []
    for name, parts, arg in operations:
        paths.append(parts)
        if name == "$rename":
            if not isinstance(arg, str) or not arg:
                raise CommandFailed(2, "The 'to' field for $rename must be a string")
            paths.append(_checked_path(arg))
    for i, a in enumerate(paths):
        for b in paths[i + 1 :]:
            short = min(len(a), len(b))
            if a[:short] == b[:short]:
                raise CommandFailed(
                    40,
                    f"Updating the path '{'.'.join(b)}' would create a conflict at "
                    f"'{'.'.join(a[:short])}'",
                )


def apply_update(doc: Doc, update: Update, query: Doc, *, inserting: bool = False) -> Doc:
    """The document ``update`` makes of ``doc`` (a new object; ``doc`` is left alone)."""
    if update.replacement is not None:
        return replaced(doc, update.replacement)
    new: Doc = deep_copy(doc)
    if update.pipeline is not None:
        new = _run_pipeline(new, update.pipeline)
    ctx = UpdateContext(doc.get("_id"), inserting, _now())
    for name, parts, arg in update.operations:
        for concrete in _concrete_paths(new, parts, query):
            if name == "$rename":
                _rename(new, concrete, split(arg))
            else:
                OPERATORS[name](new, concrete, arg, ctx)
    if "_id" in doc and not same(new.get("_id", MISSING), doc["_id"]):
        raise CommandFailed(
            66, "Performing an update on the path '_id' would modify the immutable field '_id'"
        )
    return new


def replaced(doc: Doc, replacement: Doc) -> Doc:
    """``doc`` replaced by ``replacement``, keeping its ``_id`` first."""
    for key in replacement:
        if str(key).startswith("$"):
            raise CommandFailed(
                2,
                f"The dollar ($) prefixed field '{key}' in '{key}' is not allowed in the context "
                "of an update's replacement document.",
            )
    if "_id" in replacement and "_id" in doc and not same(replacement["_id"], doc["_id"]):
        raise CommandFailed(
            66,
            "After applying the update, the (immutable) field '_id' was found to have been "
            f"altered to _id: {replacement['_id']!r}",
        )
    source = doc if "_id" in doc else replacement
    new: Doc = {"_id": source["_id"]} if "_id" in source else {}
    new.update((key, deep_copy(value)) for key, value in replacement.items() if key != "_id")
    return new


def upsert_document(query: Doc, update: Update) -> Doc:
    """The document an upsert inserts: the query's equalities, then the update, ``_id`` first."""
    seed = {} if update.is_replacement else _seed(query)
    if update.is_replacement:
        seed_id = _seed(query).get("_id", MISSING)
        if seed_id is not MISSING:
            seed["_id"] = seed_id
    new = (
        apply_update(seed, update, query, inserting=True)
        if not update.is_replacement
        else replaced(seed, update.replacement or {})
    )
    if "_id" not in new:
        new = {"_id": ObjectId(), **new}
    elif next(iter(new)) != "_id":
        new = {"_id": new["_id"], **{k: v for k, v in new.items() if k != "_id"}}
    return new


def _seed(query: Doc) -> Doc:
    fields, _ = conjuncts(query)
    seed: Doc = {}
    for path, conds in fields.items():
        for cond in conds:
            found, value = _equality_value(cond)
            if found:
                parts = split(path)
                holder = parent(seed, parts, create=True)
                if child_of(holder, parts[-1]) is not MISSING:
                    raise CommandFailed(
                        54, f"cannot infer query fields to set, path '{path}' is matched twice"
                    )
                put(holder, parts[-1], deep_copy(value))
    return seed


def _equality_value(cond: Any) -> tuple[bool, Any]:
    if not is_operator_doc(cond):
        return True, cond
    if set(cond) == {"$eq"}:
        return True, cond["$eq"]
    if set(cond) == {"$in"} and isinstance(cond["$in"], list) and len(cond["$in"]) == 1:
        return True, cond["$in"][0]
    return False, None


def _concrete_paths(doc: Doc, parts: tuple[str, ...], query: Doc) -> list[tuple[str, ...]]:
    """``parts`` with ``$`` replaced by the matched position and ``$[]`` by every position."""
    for depth, part in enumerate(parts):
        if part == "$":
            position = matched_position(doc, parts[:depth], query)
            return _concrete_paths(doc, (*parts[:depth], str(position), *parts[depth + 1 :]), query)
        if part == "$[]":
            array = _at(doc, parts[:depth])
            if not isinstance(array, list):
                raise CommandFailed(
                    2,
                    f"The path '{'.'.join(parts[:depth])}' must exist in the document "
                    "in order to apply array updates.",
                )
            out: list[tuple[str, ...]] = []
            for i in range(len(array)):
                out.extend(
                    _concrete_paths(doc, (*parts[:depth], str(i), *parts[depth + 1 :]), query)
                )
            return out
        if part.startswith("$[") and part.endswith("]"):
            raise not_supported("arrayFilters (the $[<identifier>] positional operator)")
    return [parts]


def _at(doc: Any, parts: tuple[str, ...]) -> Any:
    node = doc
    for part in parts:
        node = child_of(node, part)
    return node


def _rename(doc: Doc, source: tuple[str, ...], target: tuple[str, ...]) -> None:
    holder = parent(doc, source, create=False)
    value = child_of(holder, source[-1]) if holder is not None else MISSING
    if value is MISSING:
        return
    if isinstance(holder, list):
        raise CommandFailed(2, "The source field cannot be an array element")
    remove(holder, source[-1])
    put(parent(doc, target, create=True), target[-1], value)


def _run_pipeline(doc: Doc, pipeline: list[Any]) -> Doc:
    """``doc`` through an update pipeline; its ``_id`` stays (first) if a stage dropped it."""
    results = [doc]
    for stage in pipeline:
        operator, options = split_stage(stage)
        results = apply_stage(results, operator, options, None)
    if len(results) != 1 or not isinstance(results[0], dict):
        raise CommandFailed(2, "an update pipeline must produce one document")
    result: Doc = dict(results[0])
    if "_id" in doc and "_id" not in result:
        result = {"_id": doc["_id"], **result}
    return result


def _now() -> dt.datetime:
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)
