"""Query plans: which index to scan, over which key ranges, and whether that gives the sort.

For each index, the predicates on its leading fields become bounds: equality and ``$in`` points
(``$in`` explodes into one scan per combination of points), then at most one range field. The
plan with the most bounded fields wins; a unique index bounded to one key wins outright, and
serving the requested sort from the index breaks ties. Scans of several point prefixes are
merged on the rest of the key, so ``{status: {$in: [null, "queued"]}}`` sorted by ``_id`` over
``(status, priority, _id)`` still comes out in ``_id`` order without sorting. A top-level
``$or`` whose every branch can use an index becomes a union of plans. Otherwise: a scan of the
whole collection in natural order.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from reactor.testing.double.engine import bounds as bd
from reactor.testing.double.engine import keystring as ks
from reactor.testing.double.engine.conjuncts import conjuncts
from reactor.testing.double.engine.index import Index, seq_of
from reactor.testing.double.engine.partial import implies
from reactor.testing.double.replies import Doc

SortSpec = list[tuple[str, int]]
_MAX_PREFIXES = 512


@dataclass
class Plan:
    """How to find the candidate records of one query."""

    index: Index | None = None
    scans: list[tuple[int, list[tuple[bytes, bytes | None]]]] = field(default_factory=list)
    sorted: bool = False  # candidates arrive in the requested sort order
    reverse: bool = False
    cost: float = 0.0  # index entries (or records) it is expected to examine
    branches: list[Plan] | None = None  # a union of plans for a top-level $or

    @property
    def dedupe(self) -> bool:
        return self.branches is not None or (self.index is not None and self.index.multikey)

    def describe(self) -> str:
        if self.branches is not None:
            return "OR(" + ", ".join(branch.describe() for branch in self.branches) + ")"
        return "COLLSCAN" if self.index is None else f"IXSCAN {self.index.spec.name}"


def plan_query(
    indexes: list[Index], spec: Doc, sort: SortSpec, hint: Index | None = None, limit: int = 0
) -> Plan:
    """The cheapest plan: fewest index entries in its ranges, counted by bisection.

    A plan with bounds that yields the requested order (or any, when none is asked for) can
    stop after ``limit`` matches, so it is charged at most ``limit * 10`` entries; a plan that
    needs an in-memory sort is charged double. A scan of a whole index only for its order is
    charged every entry unless the query has no predicates (the matcher may reject them all).
    """
    fields, ors = conjuncts(spec)
    known = {path: _field_bounds(conds, arrays=False) for path, conds in fields.items()}
    fixed = {path for path, found in known.items() if _is_single_point(found)}
    rest = [(path, direction) for path, direction in sort if path not in fixed]
    if hint is not None:
        return _index_plan(hint, known, fields, rest, limit, forced=True) or Plan()
    pinned = _unique_point(indexes, known, fields, rest, limit)
    if pinned is not None:
        return pinned
    sorted_on = rest[0][0] if rest else None
    size = next((len(index.entries) for index in indexes if index.is_id), 0)
    plans = [Plan(cost=_charge(size, not rest, limit if not (fields or ors) else 0))]
    plans += [
        plan
        for index in indexes
        if not index.spec.hidden and not index.special
        if index.fields[0] in known or index.fields[0] == sorted_on
        if (plan := _index_plan(index, known, fields, rest, limit)) is not None
    ]
    best = min(plans, key=lambda plan: plan.cost)
    if ors and best.cost > 1:
        union = _union(indexes, fields, ors[0], ordered=not rest)
        if union is not None and union.cost < best.cost:
            return union
    return best


def _unique_point(
    indexes: list[Index],
    known: dict[str, bd.Bounds],
    fields: dict[str, list[Any]],
    sort: SortSpec,
    limit: int,
) -> Plan | None:
    """A plan over a unique index pinned to one key: nothing can beat it, so look no further."""
    for index in indexes:
        if index.spec.unique and not index.special and not index.spec.hidden:
            bounds = [known.get(name) for name in index.fields]
            if all(_is_single_point(found) for found in bounds):
                plan = _index_plan(index, known, fields, sort, limit)
                if plan is not None:
                    return plan
    return None


def _charge(entries: int, ordered: bool, limit: int) -> float:
    if not ordered:
        return entries * 2.0 + 1
    return float(min(entries, limit * 10)) if limit else float(entries)


def _is_single_point(found: bd.Bounds) -> bool:
    return found is not None and len(found) == 1 and found[0].point


def _union(
    indexes: list[Index], fields: dict[str, list[Any]], branches: list[Any], *, ordered: bool
) -> Plan | None:
    """One plan per ``$or`` branch, each with the predicates outside the ``$or`` (other ``$or``
    lists are left to the matcher)."""
    outer = [{path: cond} for path, conds in fields.items() for cond in conds]
    plans = []
    for branch in branches:
        if not isinstance(branch, dict):
            return None
        plan = plan_query(indexes, {"$and": [branch, *outer]} if outer else branch, [])
        if plan.index is None and plan.branches is None:
            return None
        plans.append(plan)
    entries = sum(plan.cost for plan in plans)
    return Plan(branches=plans, cost=entries if ordered else entries * 2.0 + 1)


def _index_plan(
    index: Index,
    known: dict[str, bd.Bounds],
    fields: dict[str, list[Any]],
    sort: SortSpec,
    limit: int,
    *,
    forced: bool = False,
) -> Plan | None:
    spec = index.spec
    if not forced and spec.partial is not None and not implies(fields, index):
        return None
    if index.multikey:
        known = {path: _field_bounds(conds, arrays=True) for path, conds in fields.items()}
    per_field = [known.get(name) for name in index.fields]
    if not forced and spec.sparse and not _excludes_null(per_field[0]):
        return None
    prefixes, points, ranges, range_at = [b""], 0, None, len(index.fields)
    for position, found in enumerate(per_field):
        if found is None:
            range_at = position
            break
        if all(i.point for i in found) and len(prefixes) * len(found) <= _MAX_PREFIXES:
            codes = [_code(i, index.descending[position]) for i in found]
            prefixes = [prefix + code for prefix in prefixes for code in codes]
            points += 1
            continue
        ranges, range_at = found, position
        break
    served, reverse = _serves(index, range_at, sort)
    if not forced and points == 0 and ranges is None and not (sort and served):
        return None
    descending = range_at < len(index.fields) and index.descending[range_at]
    scans = [(len(p), _ranges(p, ranges, descending)) for p in prefixes]
    entries = sum(_count(index, low, high) for _, ranges_ in scans for low, high in ranges_)
    bounded = points > 0 or ranges is not None or not fields
    return Plan(index, scans, served, reverse, _charge(entries, served, limit if bounded else 0))


def _count(index: Index, low: bytes, high: bytes | None) -> int:
    """How many entries lie in ``[low, high)``, by two bisections."""
    entries = index.entries
    end = len(entries) if high is None else entries.bisect_left(high)
    return max(0, end - entries.bisect_left(low))


def _field_bounds(conds: list[Any], *, arrays: bool) -> bd.Bounds:
    found: bd.Bounds = None
    for cond in conds:
        found = bd.intersect(found, bd.predicate_bounds(cond, arrays)[0])
    return found


def _excludes_null(found: bd.Bounds) -> bool:
    return found is not None and not any(bd.contains(i, ks.NULL_KEY) for i in found)


def _code(interval: bd.Interval, descending: bool) -> bytes:
    assert interval.lo is not None
    return ks.invert(interval.lo[0]) if descending else interval.lo[0]


def _serves(index: Index, start: int, sort: SortSpec) -> tuple[bool, bool]:
    """Whether scanning ``index`` (forward or in reverse) yields ``sort`` order past ``start``."""
    if not sort:
        return True, False
    if index.multikey or len(sort) > len(index.fields) - start:
        return False, False
    wanted = [(path, direction < 0) for path, direction in sort]
    have = list(zip(index.fields[start:], index.descending[start:], strict=True))[: len(sort)]
    if wanted == have:
        return True, False
    if wanted == [(path, not desc) for path, desc in have]:
        return True, True
    return False, False


def _ranges(prefix: bytes, ranges: bd.Bounds, descending: bool) -> list[tuple[bytes, bytes | None]]:
    end = ks.successor(prefix) if prefix else None
    if ranges is None:
        return [(prefix, end)]
    out: list[tuple[bytes, bytes | None]] = []
    for interval in reversed(ranges) if descending else ranges:
        low, high = (
            _inverted(interval)
            if descending
            else (bd.lower_bytes(interval.lo), bd.upper_bytes(interval.hi))
        )
        if low is not None:
            out.append((prefix + low, end if high is None else prefix + high))
    return out


def _inverted(interval: bd.Interval) -> tuple[bytes | None, bytes | None]:
    """The key range of ``interval`` on a descending (inverted) field."""
    low: bytes | None = b""
    high: bytes | None = None
    if interval.hi is not None:
        code = ks.invert(interval.hi[0])
        low = code if interval.hi[1] else ks.successor(code)
    if interval.lo is not None:
        code = ks.invert(interval.lo[0])
        high = ks.successor(code) if interval.lo[1] else code
    return low, high


def candidates(plan: Plan) -> Iterator[int]:
    """Record numbers to check, in the plan's order (may repeat for unions and multikey)."""
    if plan.branches is not None:
        for branch in plan.branches:
            yield from candidates(branch)
        return
    index = plan.index
    assert index is not None
    streams = [_scan(index, ranges, plan.reverse) for _, ranges in plan.scans]
    if len(streams) == 1:
        yield from (seq_of(entry) for entry in streams[0])
        return
    if not plan.sorted:
        for stream in streams:
            yield from (seq_of(entry) for entry in stream)
        return
    keyed = [
        _suffixed(stream, length) for (length, _), stream in zip(plan.scans, streams, strict=True)
    ]
    for _, entry in heapq.merge(*keyed, reverse=plan.reverse):
        yield seq_of(entry)


def _suffixed(stream: Iterator[bytes], length: int) -> Iterator[tuple[bytes, bytes]]:
    """Entries keyed by what follows their point prefix (a function of its own, so that each
    stream keeps its own ``length``: a generator expression would read the loop's last one)."""
    return ((entry[length:], entry) for entry in stream)


def _scan(index: Index, ranges: list[tuple[bytes, bytes | None]], reverse: bool) -> Iterator[bytes]:
    for low, high in reversed(ranges) if reverse else ranges:
        yield from index.entries.irange(low or None, high, inclusive=(True, False), reverse=reverse)
