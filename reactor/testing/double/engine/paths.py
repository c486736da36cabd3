"""Dotted field paths read the way MongoDB's query language reads them.

``values_at({"a": [{"b": 1}, {"c": 2}]}, "a.b")`` is ``[1, MISSING]``: a path component that
meets an array is applied to each document in it, a numeric component also indexes the array,
and a document lacking the field contributes :data:`MISSING` (so ``{"a.b": null}`` matches).
The values at the end of the path are returned as they are; the matcher applies its operators to
each one and, when one is an array, to each of its elements.
"""

from __future__ import annotations

from typing import Any

from reactor.testing.double.replies import Doc


class _Missing:
    __slots__ = ()

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()


def split(path: str) -> tuple[str, ...]:
    return tuple(path.split("."))


def values_at(doc: Any, path: str | tuple[str, ...]) -> list[Any]:
    """Every value ``path`` reaches in ``doc`` (``[MISSING]`` when it reaches none)."""
    parts = split(path) if isinstance(path, str) else path
    if len(parts) == 1 and type(doc) is dict:
        return [doc.get(parts[0], MISSING)]
    found: list[Any] = []
    _walk(doc, parts, 0, found)
    return found or [MISSING]


def _walk(node: Any, parts: tuple[str, ...], depth: int, found: list[Any]) -> None:
    if depth == len(parts):
        found.append(node)
        return
    part = parts[depth]
    if isinstance(node, dict):
        child = node.get(part, MISSING)
        if child is MISSING:
            found.append(MISSING)
        else:
            _walk(child, parts, depth + 1, found)
    elif isinstance(node, list):
        if part.isdigit() and int(part) < len(node):
            _walk(node[int(part)], parts, depth + 1, found)
        for item in node:
            if isinstance(item, dict):
                _walk(item, parts, depth, found)
    else:
        found.append(MISSING)


def get_exact(doc: Any, parts: tuple[str, ...]) -> Any:
    """The single value at ``parts``, indexing arrays only by number; MISSING if none."""
    node = doc
    for part in parts:
        if isinstance(node, dict):
            node = node.get(part, MISSING)
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return MISSING
        if node is MISSING:
            return MISSING
    return node


def expand_dotted(fields: Doc) -> Doc:
    """``{"a.b": 1, "c": 2}`` as the nested document ``{"a": {"b": 1}, "c": 2}``."""
    out: Doc = {}
    for path, value in fields.items():
        node = out
        *parents, leaf = path.split(".")
        for part in parents:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                child = node[part] = {}
            node = child
        node[leaf] = value
    return out


def deep_copy(value: Any) -> Any:
    """A copy of the containers of a BSON value (leaves are immutable and shared)."""
    if type(value) is dict:
        return {key: deep_copy(item) for key, item in value.items()}
    if type(value) is list:
        return [deep_copy(item) for item in value]
    if isinstance(value, dict):
        return {key: deep_copy(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [deep_copy(item) for item in value]
    return value


def same(a: Any, b: Any) -> bool:
    """Whether two BSON values are identical, types and field order included (1 vs 1.0 differ)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[key], b[key]) for key in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) and a != a:
        return bool(b != b)
    return bool(a == b)
