"""Running a query: plan it, check each candidate with the matcher, sort, skip and limit.

``examined`` counts the documents the matcher looked at in the last query of a collection, the
figure MongoDB's explain calls ``totalDocsExamined``; tests use it to prove a query was served
from an index.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from reactor.testing.double.engine.collection import Collection
from reactor.testing.double.engine.index import Index
from reactor.testing.double.engine.matcher import compile_filter
from reactor.testing.double.engine.planner import Plan, candidates, plan_query
from reactor.testing.double.engine.sorting import parse_sort, sort_key
from reactor.testing.double.replies import CommandFailed, Doc, not_supported


@dataclass
class QueryStats:
    plan: str = ""
    examined: int = 0


LAST = QueryStats()


def find(
    coll: Collection | None,
    spec: Any,
    *,
    sort: Any = None,
    skip: int = 0,
    limit: int = 0,
    hint: Any = None,
) -> list[tuple[int, Doc]]:
    """``(record number, document)`` of the matches, in order, after ``skip``, at most ``limit``."""
    return list(iter_find(coll, spec, sort=sort, skip=skip, limit=limit, hint=hint))


def iter_find(
    coll: Collection | None,
    spec: Any,
    *,
    sort: Any = None,
    skip: int = 0,
    limit: int = 0,
    hint: Any = None,
) -> Iterator[tuple[int, Doc]]:
    spec = spec if spec is not None else {}
    predicate = compile_filter(spec)
    order = parse_sort(sort)
    if coll is None:
        return iter(())
    plan = plan_query(list(coll.indexes.values()), spec, order, _hint(coll, hint), skip + limit)
    LAST.plan, LAST.examined = plan.describe(), 0
    found: Iterator[tuple[int, Doc]] = (p for p in _candidates(coll, plan) if predicate(p[1]))
    if order and not plan.sorted:
        key = sort_key(order)
        found = iter(sorted(found, key=lambda pair: key(pair[1])))
    stop = None if not limit else skip + limit
    return itertools.islice(found, skip, stop)


def _candidates(coll: Collection, plan: Plan) -> Iterator[tuple[int, Doc]]:
    records = coll.records
    if plan.index is None and plan.branches is None:
        for seq, doc in list(records.items()):
            LAST.examined += 1
            yield seq, doc
        return
    seen: set[int] | None = set() if plan.dedupe else None
    for seq in candidates(plan):
        if seen is not None:
            if seq in seen:
                continue
            seen.add(seq)
        found = records.get(seq)
        if found is not None:
            LAST.examined += 1
            yield seq, found


def _hint(coll: Collection, hint: Any) -> Index | None:
    if not hint:
        return None
    index: Index | None = None
    if isinstance(hint, str):
        index = coll.indexes.get(hint)
    elif isinstance(hint, dict):
        if "$natural" in hint:
            return None
        index = next((i for i in coll.indexes.values() if dict(i.spec.key) == hint), None)
    if index is not None and index.special:
        raise not_supported(
            f"a hint to the {index.spec.name} index (geo and hashed indexes hold no keys)"
        )
    if index is None:
        raise CommandFailed(
            2,
            "error processing query: planner returned error :: caused by :: "
            "hint provided does not correspond to an existing index",
        )
    return index


def count(
    coll: Collection | None, spec: Any, *, skip: int = 0, limit: int = 0, hint: Any = None
) -> int:
    if not spec and hint is None:  # what estimated_document_count asks: the collection's size
        total = max(0, (len(coll) if coll is not None else 0) - skip)
        return min(total, limit) if limit else total
    return sum(1 for _ in iter_find(coll, spec, skip=skip, limit=limit, hint=hint))


def sort_key_for(sort: Any) -> Callable[[Doc], bytes]:
    """The byte sort key function of a wire sort document."""
    return sort_key(parse_sort(sort))
