"""Sort specifications and in-memory sort keys in MongoDB's order.

An array sorts by its smallest element ascending and by its largest descending; an empty array
sorts before null; a missing field sorts as null. Keys are :mod:`keystring` bytes, descending
fields inverted, so ``sorted(docs, key=...)`` runs its comparisons in C.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from reactor.testing.double.engine import keystring as ks
from reactor.testing.double.engine.paths import MISSING, split, values_at
from reactor.testing.double.replies import CommandFailed, Doc, not_supported

SortSpec = list[tuple[str, int]]


def parse_sort(sort: Any) -> SortSpec:
    """A wire sort document as ``[(path, 1 | -1)]``; code 2 or 238 when it is not one."""
    if sort is None:
        return []
    if not isinstance(sort, dict):
        raise CommandFailed(14, "sort must be an object")
    spec: SortSpec = []
    for path, direction in sort.items():
        if isinstance(direction, dict):
            raise not_supported(f"sorting by {direction!r}")
        if isinstance(direction, bool) or direction not in (1, -1, 1.0, -1.0):
            raise CommandFailed(
                15975, "$sort key ordering must be 1 (for ascending) or -1 (for descending)"
            )
        spec.append((path, int(direction)))
    return spec


def sort_key(spec: SortSpec) -> Callable[[Doc], bytes]:
    """The function giving each document its byte sort key for ``spec``."""
    fields = [(split(path), direction < 0) for path, direction in spec]

    def key(doc: Doc) -> bytes:
        parts = []
        for path, descending in fields:
            candidates = _field_keys(values_at(doc, path))
            if descending:
                parts.append(ks.invert(max(candidates)))
            else:
                parts.append(min(candidates))
        return b"".join(parts)

    return key


def _field_keys(values: list[Any]) -> list[bytes]:
    keys: list[bytes] = []
    for value in values:
        if value is MISSING or value is None:
            keys.append(ks.NULL_KEY)
        elif type(value) is list:
            keys.extend(ks.encode(item) for item in value)
            if not value:
                keys.append(ks.UNDEFINED_KEY)
        else:
            keys.append(ks.encode(value))
    return keys
