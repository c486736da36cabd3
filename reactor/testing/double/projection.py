"""Aggregation ``$project``, ``$addFields``/``$set`` and ``$unset`` with MongoDB's path rules.

A spec becomes a tree: dotted keys (``"fullDocument.status": 1``) and sub-documents
(``{"ns": {"db": 1}}``) are the same path. Each leaf includes, excludes, or computes a value with
an aggregation expression (``engine.expressions``, always against the whole
input document).

Applying a tree follows MongoDB: included fields keep the input document's order and computed
fields follow; a path into an array applies to each element (inclusion drops the scalars there,
exclusion keeps them); ``_id`` is included unless excluded.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bson.decimal128 import Decimal128
from bson.int64 import Int64

from reactor.testing.double.engine.expressions import evaluate as evaluate_expression
from reactor.testing.double.replies import CommandFailed, Doc, not_supported

Projector = Callable[[Doc], Doc]
_FLAG_TYPES = (bool, int, float, Int64, Decimal128)


@dataclass
class _Node:
    """One level of a projection: what happens to each field name below it."""

    included: set[str] = field(default_factory=set)
    excluded: set[str] = field(default_factory=set)
    computed: dict[str, Any] = field(default_factory=dict)  # name -> expression
    children: dict[str, _Node] = field(default_factory=dict)

    def names(self) -> set[str]:
        return self.included | self.excluded | set(self.computed) | set(self.children)

    def has_computed(self) -> bool:
        return bool(self.computed) or any(c.has_computed() for c in self.children.values())

    def has_included(self) -> bool:
        return bool(self.included) or any(c.has_included() for c in self.children.values())

    def has_excluded(self) -> bool:
        return bool(self.excluded) or any(c.has_excluded() for c in self.children.values())


def project_stage(spec: Any) -> Projector:
    """A ``$project`` stage; code 31254/31253 for mixed modes, as MongoDB answers."""
    if not isinstance(spec, dict) or not spec:
        raise CommandFailed(51272, "$project specification must be a non-empty object")
    root, leaves = _Node(), list[tuple[bool, str]]()
    for key, value in spec.items():
        _add(root, str(key).split("."), value, str(key), leaves)
    id_flag = _take_id(root)
    modes = [(excludes, path) for excludes, path in leaves if path != "_id"]
    exclusion = modes[0][0] if modes else id_flag is False
    for excludes, path in modes:
        if excludes and not exclusion:
            raise CommandFailed(
                31254, f"Cannot do exclusion on field {path} in inclusion projection"
            )
        if exclusion and not excludes:
            raise CommandFailed(
                31253, f"Cannot do inclusion on field {path} in exclusion projection"
            )
    if exclusion:
        if id_flag is False:
            root.excluded.add("_id")
        return lambda doc: _exclude(doc, root)
    if id_flag is not False:
        root.included.add("_id")
    return lambda doc: _include(doc, root, doc)


def unset_stage(spec: Any) -> Projector:
    """An ``$unset`` stage: a field path or a list of them, excluded."""
    paths = [spec] if isinstance(spec, str) else spec
    if not isinstance(paths, list) or not paths or not all(isinstance(p, str) for p in paths):
        raise CommandFailed(31002, "$unset specification must be a string or an array of strings")
    root = _Node()
    for path in paths:
        _add(root, path.split("."), 0, path, [])
    return lambda doc: _exclude(doc, root)


def add_fields_stage(spec: Any) -> Projector:
    """An ``$addFields``/``$set`` stage: every field kept, the computed ones set (or replaced)."""
    if not isinstance(spec, dict) or not spec:
        raise CommandFailed(40272, "$addFields specification must be a non-empty object")
    root = _Node()
    for key, value in spec.items():
        expression = {"$literal": value} if _is_flag(value) else value
        _add(root, str(key).split("."), expression, str(key), [])
    return lambda doc: _add_fields(copy.deepcopy(doc), root, doc)


def inclusion_exclusion(spec: Doc) -> Projector:
    """A find-style projection (``findAndModify`` ``fields``): flags only, no expressions."""
    for value in spec.values():
        if not _is_flag(value) and (not isinstance(value, dict) or _is_expression_object(value)):
            raise not_supported(f"the projection value {value!r}")
    return project_stage(spec)


def _is_flag(value: Any) -> bool:
    return isinstance(value, _FLAG_TYPES)


def _truthy(value: Any) -> bool:
    return bool(value.to_decimal() if isinstance(value, Decimal128) else value)


def _is_expression_object(value: Any) -> bool:
    return isinstance(value, dict) and bool(value) and str(next(iter(value))).startswith("$")


def _add(
    node: _Node, parts: list[str], value: Any, path: str, leaves: list[tuple[bool, str]]
) -> None:
    """Put ``value`` at ``parts`` below ``node``; ``leaves`` gets (excludes?, path) per leaf."""
    name, rest = parts[0], parts[1:]
    if not name or name.startswith("$"):
        raise CommandFailed(16410, f"FieldPath field names may not start with '$': {path}")
    if rest:
        _add(_child(node, name, path), rest, value, path, leaves)
    elif isinstance(value, dict) and not _is_expression_object(value):
        if not value:
            raise CommandFailed(51270, f"An empty sub-projection is not a valid value: {path}")
        child = _child(node, name, path)
        for key, sub in value.items():
            _add(child, str(key).split("."), sub, f"{path}.{key}", leaves)
    else:
        if name in node.names():
            raise CommandFailed(31250, f"Path collision at {path}")
        excludes = _is_flag(value) and not _truthy(value)
        if _is_flag(value):
            (node.excluded if excludes else node.included).add(name)
        else:
            node.computed[name] = value
        leaves.append((excludes, path))


def _child(node: _Node, name: str, path: str) -> _Node:
    if name in node.names() and name not in node.children:
        raise CommandFailed(31250, f"Path collision at {path}")
    return node.children.setdefault(name, _Node())


def _take_id(root: _Node) -> bool | None:
    """The top-level ``_id`` flag, removed from the tree (None: not given as a flag)."""
    if "_id" in root.included:
        root.included.discard("_id")
        return True
    if "_id" in root.excluded:
        root.excluded.discard("_id")
        return False
    return None


def evaluate(expression: Any, root: Doc) -> tuple[bool, Any]:
    """``(found, value)`` of an aggregation expression on the whole document ``root``."""
    try:
        return True, evaluate_expression(expression, root)
    except KeyError:
        return False, None


def _include(doc: Doc, node: _Node, root: Doc) -> Doc:
    out: Doc = {}
    for name, value in doc.items():
        if name in node.included:
            out[name] = copy.deepcopy(value)
        elif name in node.children:
            child = node.children[name]
            if isinstance(value, dict):
                out[name] = _include(value, child, root)
            elif isinstance(value, list):
                out[name] = _include_array(value, child, root)
            elif child.has_computed():
                out[name] = _computed_only(child, root)
    for name, child in node.children.items():
        if name not in out and name not in doc and child.has_computed():
            out[name] = _computed_only(child, root)
    for name, expression in node.computed.items():
        found, value = evaluate(expression, root)
        if found:
            out[name] = value
    return out


def _include_array(values: list[Any], node: _Node, root: Doc) -> list[Any]:
    out: list[Any] = []
    for value in values:
        if isinstance(value, dict):
            out.append(_include(value, node, root))
        elif isinstance(value, list):
            out.append(_include_array(value, node, root))
        elif node.has_computed():
            out.append(_computed_only(node, root))
    return out


def _computed_only(node: _Node, root: Doc) -> Doc:
    return _include({}, node, root)


def _exclude(doc: Doc, node: _Node) -> Doc:
    out: Doc = {}
    for name, value in doc.items():
        if name in node.excluded:
            continue
        child = node.children.get(name)
        if child is not None and isinstance(value, dict):
            out[name] = _exclude(value, child)
        elif child is not None and isinstance(value, list):
            out[name] = _exclude_array(value, child)
        else:
            out[name] = copy.deepcopy(value)
    return out


def _exclude_array(values: list[Any], node: _Node) -> list[Any]:
    out: list[Any] = []
    for value in values:
        if isinstance(value, dict):
            out.append(_exclude(value, node))
        elif isinstance(value, list):
            out.append(_exclude_array(value, node))
        else:
            out.append(copy.deepcopy(value))
    return out


def _add_fields(doc: Doc, node: _Node, root: Doc) -> Doc:
    for name, child in node.children.items():
        value = doc.get(name)
        if isinstance(value, list):
            doc[name] = [_add_fields(v, child, root) if isinstance(v, dict) else v for v in value]
        else:
            doc[name] = _add_fields(value if isinstance(value, dict) else {}, child, root)
    for name, expression in node.computed.items():
        found, value = evaluate(expression, root)
        if found:
            doc[name] = value
        else:
            doc.pop(name, None)
    return doc
