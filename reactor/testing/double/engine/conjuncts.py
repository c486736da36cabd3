"""A filter's conjunction: the predicates by path that every match satisfies, and its ``$or`` lists.

``{"a": 1, "$and": [{"b": {"$gt": 2}}, {"$or": [...]}]}`` gives ``{"a": [1], "b": [{"$gt": 2}]}``
and the one ``$or`` list: what the planner bounds indexes with, an upsert seeds its document
from, and the positional ``$`` looks at.
"""

from __future__ import annotations

from typing import Any

from reactor.testing.double.replies import Doc


def conjuncts(spec: Doc) -> tuple[dict[str, list[Any]], list[list[Any]]]:
    """The predicates every match must satisfy, by path, and the ``$or`` lists among them."""
    fields: dict[str, list[Any]] = {}
    ors: list[list[Any]] = []
    for key, value in spec.items():
        if key == "$and" and isinstance(value, list):
            for item in value:
                if isinstance(item, dict):
                    sub_fields, sub_ors = conjuncts(item)
                    for path, conds in sub_fields.items():
                        fields.setdefault(path, []).extend(conds)
                    ors.extend(sub_ors)
        elif key == "$or" and isinstance(value, list):
            ors.append(value)
        elif not key.startswith("$"):
            fields.setdefault(key, []).append(value)
    return fields, ors
