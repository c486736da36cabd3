"""The pipeline stages a change stream accepts after ``$changeStream``: ``$match``, ``$project``.

``$match`` is mongomock's own filter; ``$project`` and ``$unset`` handle plain inclusion and
exclusion of (dotted) fields. Anything else is refused when the stream is opened.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from mongomock.filtering import filter_applies as _filter_applies

from reactor.testing.replies import CommandFailed, Doc, not_supported

Stage = Callable[[Doc], Doc | None]


def matches(query: Doc, doc: Doc) -> bool:
    """Whether ``doc`` satisfies the query filter ``query`` (mongomock's matcher)."""
    return bool(_filter_applies(query, doc))  # type: ignore[no-untyped-call]


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
    if name == "$match" and isinstance(spec, dict):
        return lambda doc: doc if matches(spec, doc) else None
    if name == "$project" and isinstance(spec, dict):
        return _projection(spec)
    if name == "$unset":
        fields = [spec] if isinstance(spec, str) else list(spec)
        return _projection(dict.fromkeys(fields, 0))
    raise not_supported(f"the stage {name} after $changeStream")


def _projection(spec: Doc) -> Stage:
    included = {k for k, v in spec.items() if _truthy(v) and k != "_id"}
    excluded = {k for k, v in spec.items() if not _truthy(v)}
    if included and excluded - {"_id"}:
        raise CommandFailed(31254, "Cannot do exclusion on a field in an inclusion projection")
    if included:
        keep = sorted(included | ({"_id"} - excluded))
        return lambda doc: _include(doc, keep)
    return lambda doc: _exclude(doc, sorted(excluded))


def _truthy(value: Any) -> bool:
    if isinstance(value, (bool, int, float)):
        return bool(value)
    raise not_supported(f"the projection value {value!r} in a change stream")


def _include(doc: Doc, paths: list[str]) -> Doc:
    out: Doc = {}
    for path in paths:
        found, value = _get(doc, path)
        if found:
            _set(out, path, copy.deepcopy(value))
    return out


def _exclude(doc: Doc, paths: list[str]) -> Doc:
    out = copy.deepcopy(doc)
    for path in paths:
        *parents, leaf = path.split(".")
        node: Any = out
        for part in parents:
            node = node.get(part) if isinstance(node, dict) else None
        if isinstance(node, dict):
            node.pop(leaf, None)
    return out


def _get(doc: Doc, path: str) -> tuple[bool, Any]:
    node: Any = doc
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return False, None
        node = node[part]
    return True, node


def _set(doc: Doc, path: str, value: Any) -> None:
    *parents, leaf = path.split(".")
    node = doc
    for part in parents:
        node = node.setdefault(part, {})
    node[leaf] = value


def project(doc: Doc, spec: Doc) -> Doc:
    """``doc`` through a plain inclusion or exclusion projection (findAndModify ``fields``)."""
    projected = _projection(spec)(doc)
    return doc if projected is None else projected
