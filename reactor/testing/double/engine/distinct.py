"""distinct: the values of one field across documents, arrays unwound, in BSON order."""

from __future__ import annotations

from typing import Any

from reactor.testing.double.engine import keystring as ks
from reactor.testing.double.engine.paths import MISSING, values_at
from reactor.testing.double.replies import Doc


def distinct_values(docs: list[Doc], path: str) -> list[Any]:
    """Each distinct value of ``path`` once (1 and 1.0 are one value), sorted as MongoDB sorts."""
    found: dict[bytes, Any] = {}
    for doc in docs:
        for value in values_at(doc, path):
            items = value if type(value) is list else [value]
            for item in items:
                if item is not MISSING:
                    found.setdefault(ks.encode(item), item)
    return [found[key] for key in sorted(found)]
