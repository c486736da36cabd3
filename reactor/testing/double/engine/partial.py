"""When a partial index may serve a query: every document the query matches lies in its filter.

As MongoDB does, the check is syntactic: for each predicate of the partial filter, the query
must either repeat it, or pin the field to values (equality, ``$eq``, ``$in``) that all pass it;
``{job_id: "j1"}`` can use an index with ``{job_id: {$type: "string"}}``.
"""

from __future__ import annotations

from typing import Any

from reactor.testing.double.engine.conjuncts import conjuncts
from reactor.testing.double.engine.index import Index
from reactor.testing.double.engine.matcher import compile_filter, is_operator_doc


def _partial_checks(index: Index) -> list[tuple[str, list[Any], Any]] | None:
    """The partial filter's predicates by path, each compiled once per index."""
    if "partial" not in index.planner_cache:
        wanted, ors = conjuncts(index.spec.partial or {})
        checks = [
            (path, conds, compile_filter({"$and": [{path: cond} for cond in conds]}))
            for path, conds in wanted.items()
        ]
        index.planner_cache["partial"] = None if ors else checks
    found: list[tuple[str, list[Any], Any]] | None = index.planner_cache["partial"]
    return found


def implies(fields: dict[str, list[Any]], index: Index) -> bool:
    """Whether every document the query can match lies inside the partial filter."""
    checks = _partial_checks(index)
    if checks is None:
        return False
    for path, conds, check in checks:
        values = _equalities(fields.get(path, []))
        implied = values is not None and all(check({path: value}) for value in values)
        if not implied and not any(cond in fields.get(path, []) for cond in conds):
            return False
    return True


def _equalities(conds: list[Any]) -> list[Any] | None:
    """The values an equality or ``$in`` among ``conds`` allows, or None if none restricts so."""
    for cond in conds:
        if not is_operator_doc(cond):
            return [cond]
        if "$eq" in cond:
            return [cond["$eq"]]
        if isinstance(cond.get("$in"), list):
            return list(cond["$in"])
    return None
