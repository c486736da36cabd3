"""One aggregation stage over a list of documents: the engine's own, or mongomock's handler.

``$match``, ``$sort``, ``$skip``, ``$limit``, ``$unset``, ``$set``/``$addFields`` and
``$replaceRoot``/``$replaceWith`` are the engine's (the last two with MongoDB's path rules and
:mod:`expressions`, which knows ``$getField``/``$setField``/``$unsetField``); the other stages
are mongomock's handlers. What mongomock cannot
evaluate (an expression or a stage of :data:`KNOWN_STAGES` it lacks) answers 238; an unknown stage
name 40324.
"""

from __future__ import annotations

from typing import Any

from mongomock import aggregate as mongomock_aggregate
from pymongo.errors import OperationFailure

from reactor.testing.double.engine.expressions import failure
from reactor.testing.double.engine.matcher import compile_filter
from reactor.testing.double.engine.projection import compile_projection
from reactor.testing.double.engine.sorting import parse_sort, sort_key
from reactor.testing.double.projection import add_fields_stage, evaluate
from reactor.testing.double.replies import CommandFailed, Doc, not_supported

# Every aggregation stage MongoDB 8 knows: one mongomock lacks answers 238, an unknown name 40324.
KNOWN_STAGES = frozenset(
    {
        "$addFields", "$bucket", "$bucketAuto", "$changeStream", "$changeStreamSplitLargeEvent",
        "$collStats", "$count", "$currentOp", "$densify", "$documents", "$facet", "$fill",
        "$geoNear", "$graphLookup", "$group", "$indexStats", "$limit", "$listLocalSessions",
        "$listSampledQueries", "$listSearchIndexes", "$listSessions", "$lookup", "$match",
        "$merge", "$out", "$planCacheStats", "$project", "$querySettings", "$queryStats",
        "$rankFusion", "$redact", "$replaceRoot", "$replaceWith", "$sample", "$score",
        "$scoreFusion", "$search", "$searchMeta", "$set", "$setWindowFields",
        "$shardedDataDistribution", "$skip", "$sort", "$sortByCount", "$unionWith", "$unset",
        "$unwind", "$vectorSearch",
    }
)  # fmt: skip


def split_stage(stage: Any) -> tuple[str, Any]:
    if not isinstance(stage, dict) or len(stage) != 1:
        raise CommandFailed(
            40323, "A pipeline stage specification object must contain exactly one field."
        )
    ((operator, options),) = stage.items()
    return operator, options


def apply_stage(docs: list[Doc], operator: str, options: Any, database: Any) -> list[Doc]:
    """The documents after one stage (``database`` serves ``$lookup``-like stages)."""
    if operator == "$match":
        test = compile_filter(options)
        return [doc for doc in docs if test(doc)]
    if operator == "$sort":
        return sorted(docs, key=sort_key(parse_sort(options)))
    if operator in {"$skip", "$limit"}:
        if not isinstance(options, int) or isinstance(options, bool) or options < 0:
            code = 15956 if operator == "$skip" else 15957
            raise CommandFailed(code, f"invalid argument to {operator}")
        return docs[options:] if operator == "$skip" else docs[:options]
    if operator == "$unset":
        fields = [options] if isinstance(options, str) else options
        project = compile_projection(dict.fromkeys(fields, 0))
        return docs if project is None else [project(doc) for doc in docs]
    if operator in {"$set", "$addFields"}:
        return [add(doc) for add in [add_fields_stage(options)] for doc in docs]
    if operator in {"$replaceRoot", "$replaceWith"}:
        return [_replace_root(operator, options, doc) for doc in docs]
    out = _mongomock_stage(docs, operator, options, database)
    if operator == "$group":  # MongoDB puts the group key first; mongomock puts it last
        out = [{"_id": d.get("_id"), **{k: v for k, v in d.items() if k != "_id"}} for d in out]
    return out


def _replace_root(operator: str, options: Any, doc: Doc) -> Doc:
    if operator == "$replaceRoot":
        if not isinstance(options, dict) or "newRoot" not in options:
            raise CommandFailed(40231, "no newRoot specified for the $replaceRoot stage")
        options = options["newRoot"]
    found, value = evaluate(options, doc)
    if not found or not isinstance(value, dict):
        raise CommandFailed(
            40228,
            f"'replacement document' must evaluate to an object, but got: {value!r}",
        )
    return value


def _mongomock_stage(docs: list[Doc], operator: str, options: Any, database: Any) -> list[Doc]:
    handlers: dict[str, Any] = mongomock_aggregate._PIPELINE_HANDLERS
    if operator not in KNOWN_STAGES:
        raise CommandFailed(40324, f"Unrecognized pipeline stage name: '{operator}'")
    handler = handlers.get(operator)
    if handler is None:
        raise not_supported(f"the aggregation stage {operator}")
    try:
        return list(handler(docs, database, options))
    except OperationFailure as exc:
        if str(exc).startswith("Unrecognized expression"):
            raise not_supported(f"{operator} as used here ({exc})") from exc
        raise failure(exc) from exc
    except NotImplementedError as exc:
        raise not_supported(f"{operator} as used here ({exc})") from exc
