"""The pipeline stages a change stream accepts after ``$changeStream``.

``$match`` is the engine's query matcher (``engine.matcher``, the one every
find uses), compiled once when the stream opens, so a bad filter fails the ``aggregate``;
``$project``, ``$addFields``/``$set`` and ``$unset`` follow MongoDB's path rules
(:mod:`reactor.testing.double.projection`); ``$replaceRoot``/``$replaceWith`` evaluate their
expression. As on MongoDB, an unknown stage name answers 40324 and a stage that is not allowed
in a change stream answers 20; ``$redact`` (allowed by MongoDB) is refused with 238. A final
``$changeStreamSplitLargeEvent`` is taken off by the stream, which splits events.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from reactor.testing.double.engine.matcher import compile_filter
from reactor.testing.double.engine.pipeline import KNOWN_STAGES
from reactor.testing.double.projection import (
    add_fields_stage,
    evaluate,
    inclusion_exclusion,
    project_stage,
    unset_stage,
)
from reactor.testing.double.replies import CommandFailed, Doc, not_supported

Stage = Callable[[Doc], Doc | None]

_REFUSED = frozenset({"$redact"})
SPLIT_STAGE = "$changeStreamSplitLargeEvent"  # allowed only as the last stage (changestream.py)


def compile_stages(stages: list[Any]) -> list[Stage]:
    """One callable per stage: it returns the transformed event, or None to drop it."""
    return [_compile(stage) for stage in stages]


def apply_stages(stages: list[Stage], doc: Doc) -> Doc | None:
    for stage in stages:
        result = stage(doc)
        if result is None:
            return None
        doc = result
    return doc


def _compile(stage: Any) -> Stage:
    if not isinstance(stage, dict) or len(stage) != 1:
        raise CommandFailed(
            40323, "A pipeline stage specification object must contain exactly one field."
        )
    ((name, spec),) = stage.items()
    if name == "$match":
        if not isinstance(spec, dict):
            raise CommandFailed(15959, "the match filter must be an expression in an object")
        applies = compile_filter(spec)
        return lambda doc: doc if applies(doc) else None
    if name == "$project":
        return project_stage(spec)
    if name == "$unset":
        return unset_stage(spec)
    if name in {"$addFields", "$set"}:
        return add_fields_stage(spec)
    if name in {"$replaceRoot", "$replaceWith"}:
        return _replace_root(name, spec)
    if name == "$changeStream":
        raise CommandFailed(40602, "$changeStream is only valid as the first stage in a pipeline")
    if name == SPLIT_STAGE:
        raise CommandFailed(
            7182802, f"{SPLIT_STAGE} must be the last stage in the pipeline, with no options"
        )
    if name in _REFUSED:
        raise not_supported(f"the stage {name} after $changeStream")
    if name in KNOWN_STAGES:  # not allowed after $changeStream
        raise CommandFailed(20, f"{name} is not permitted in a $changeStream pipeline")
    raise CommandFailed(40324, f"Unrecognized pipeline stage name: '{name}'")


def _replace_root(name: str, spec: Any) -> Stage:
    if name == "$replaceRoot":
        if not isinstance(spec, dict) or "newRoot" not in spec:
            raise CommandFailed(40231, "no newRoot specified for the $replaceRoot stage")
        spec = spec["newRoot"]

    def replace(doc: Doc) -> Doc:
        found, value = evaluate(spec, doc)
        if not found or not isinstance(value, dict):
            raise CommandFailed(
                40228, f"'replacement document' must evaluate to an object, but got {value!r}"
            )
        return value

    return replace


def project(doc: Doc, spec: Doc) -> Doc:
    """``doc`` through a plain inclusion or exclusion projection (findAndModify ``fields``)."""
    return inclusion_exclusion(spec)(doc)
