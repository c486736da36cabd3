"""Index bounds: which key ranges of one index field a query's predicates can match.

An :class:`Interval` has endpoints ``(prefix, inclusive)`` over :mod:`keystring` encodings: a
lower ``(S, True)`` starts at the first key beginning with ``S``, ``(S, False)`` right after the
last; an upper endpoint likewise ends after (inclusive) or before (exclusive) the keys beginning
with ``S``. ``S`` is a full encoding (a point, ``{"a": 5}``) or a type's rank byte (the bracket
``{"a": {"$gt": 5}}`` stays within: numbers only). The same endpoints, inverted, bound a
descending field.

Bounds are a sorted list of disjoint intervals, or None for "any key" (the predicate does not
narrow the index). They may match more keys than the predicate (``$type: "int"`` gives every
number); the matcher checks each document found, so bounds only have to include every match.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bson import MaxKey, MinKey

from reactor.testing.double.engine import keystring as ks
from reactor.testing.double.engine import types
from reactor.testing.double.engine.matcher import is_operator_doc

Endpoint = tuple[bytes, bool]


@dataclass(frozen=True)
class Interval:
    lo: Endpoint | None
    hi: Endpoint | None
    point: bool = False


Bounds = list[Interval] | None

_TYPE_RANKS = {1: ks.RANK_NUMBER, 16: ks.RANK_NUMBER, 18: ks.RANK_NUMBER, 19: ks.RANK_NUMBER}
_TYPE_RANKS |= {2: ks.RANK_STRING, 14: ks.RANK_STRING, 3: ks.RANK_OBJECT, 5: ks.RANK_BINARY}
_TYPE_RANKS |= {6: ks.RANK_UNDEFINED, 7: ks.RANK_OBJECTID, 8: ks.RANK_BOOL, 9: ks.RANK_DATE}
_TYPE_RANKS |= {10: ks.RANK_NULL, 11: ks.RANK_REGEX, 13: ks.RANK_CODE, 15: ks.RANK_CODE}
_TYPE_RANKS |= {17: ks.RANK_TIMESTAMP, -1: ks.RANK_MINKEY, 127: ks.RANK_MAXKEY}


def point(key: bytes) -> Interval:
    return Interval((key, True), (key, True), point=True)


def bracket(rank: int) -> Interval:
    prefix = bytes([rank])
    return Interval((prefix, True), (prefix, True))


def lower_bytes(lo: Endpoint | None) -> bytes | None:
    """The smallest key inside; None when nothing can be (past the very end)."""
    if lo is None:
        return b""
    return lo[0] if lo[1] else ks.successor(lo[0])


def upper_bytes(hi: Endpoint | None) -> bytes | None:
    """The smallest key past the end; None for no end."""
    if hi is None:
        return None
    return ks.successor(hi[0]) if hi[1] else hi[0]


def is_empty(interval: Interval) -> bool:
    low, high = lower_bytes(interval.lo), upper_bytes(interval.hi)
    return low is None or (high is not None and low >= high)


def contains(interval: Interval, key: bytes) -> bool:
    low, high = lower_bytes(interval.lo), upper_bytes(interval.hi)
    return low is not None and low <= key and (high is None or key < high)


def intersect(a: Bounds, b: Bounds) -> Bounds:
    if a is None:
        return b
    if b is None:
        return a
    out = [x for x in (_meet(i, j) for i in a for j in b) if x is not None]
    return sorted(out, key=lambda i: lower_bytes(i.lo) or b"")


def _meet(a: Interval, b: Interval) -> Interval | None:
    lo = max((a.lo, b.lo), key=lambda e: lower_bytes(e) or b"\xff" * 64)
    hi = min((a.hi, b.hi), key=lambda e: (upper_bytes(e) is None, upper_bytes(e) or b""))
    single = (a.point and (lo, hi) == (a.lo, a.hi)) or (b.point and (lo, hi) == (b.lo, b.hi))
    meet = Interval(lo, hi, single)
    return None if is_empty(meet) else meet


def complement(bounds: list[Interval]) -> list[Interval]:
    """Every key outside ``bounds`` (sorted and disjoint)."""
    out: list[Interval] = []
    start: Endpoint | None = None
    for interval in bounds:
        if interval.lo is not None:
            gap = Interval(start, (interval.lo[0], not interval.lo[1]))
            if not is_empty(gap):
                out.append(gap)
        if interval.hi is None:
            return out
        start = (interval.hi[0], not interval.hi[1])
    last = Interval(start, None)
    if not is_empty(last):
        out.append(last)
    return out


def predicate_bounds(cond: Any, arrays: bool = True) -> tuple[Bounds, bool]:
    """``(bounds, exact)`` for ``{field: cond}``; exact: a value matches iff its key is inside.

    ``arrays``: whether the field may hold arrays (the index is multikey); if not, ``$type:
    "array"`` can match nothing there and needs no bounds.
    """
    if not is_operator_doc(cond):
        return _equality(cond, regex=True)
    bounds: Bounds = None
    exact = True
    for name, arg in cond.items():
        found, found_exact = _operator(name, arg, arrays)
        exact = exact and found_exact and found is not None
        bounds = intersect(bounds, found)
    return bounds, exact


def _equality(value: Any, *, regex: bool) -> tuple[Bounds, bool]:
    if isinstance(value, list) or (regex and types.is_regex(value)):
        return None, False
    if isinstance(value, MinKey | MaxKey):
        return None, False
    return [point(ks.encode(value))], True


def _operator(name: str, arg: Any, arrays: bool) -> tuple[Bounds, bool]:
    if name == "$eq":
        return _equality(arg, regex=False)
    if name == "$in":
        return _in(arg)
    if name in _RANGES:
        return _range(name, arg)
    if name in {"$ne", "$nin", "$not"}:
        inner, exact = _negated(name, arg, arrays)
        return (complement(inner), True) if exact and inner is not None else (None, False)
    if name == "$type":
        return _type(arg, arrays)
    if name == "$exists" and not arg:
        return [point(ks.NULL_KEY)], False
    return None, False


def _negated(name: str, arg: Any, arrays: bool) -> tuple[Bounds, bool]:
    if name == "$ne":
        return _equality(arg, regex=False)
    if name == "$nin":
        return _in(arg)
    if types.is_regex(arg) or not is_operator_doc(arg):
        return None, False
    return predicate_bounds(arg, arrays)


def _in(arg: Any) -> tuple[Bounds, bool]:
    if not isinstance(arg, list) or any(
        isinstance(item, list | MinKey | MaxKey) or types.is_regex(item) for item in arg
    ):
        return None, False
    keys = sorted({ks.encode(item) for item in arg})
    return [point(key) for key in keys], True


_RANGES = {"$gt", "$gte", "$lt", "$lte"}


def _range(name: str, arg: Any) -> tuple[Bounds, bool]:
    if isinstance(arg, list | MinKey | MaxKey) or types.is_regex(arg):
        return None, False
    if arg is None:
        return ([point(ks.NULL_KEY)] if name in {"$gte", "$lte"} else []), True
    key, rank = ks.encode(arg), bytes([ks.rank_of(arg)])
    if name in {"$gt", "$gte"}:
        return [Interval((key, name == "$gte"), (rank, True))], True
    return [Interval((rank, True), (key, name == "$lte"))], True


def _type(arg: Any, arrays: bool) -> tuple[Bounds, bool]:
    try:
        codes = types.type_set(arg)
    except Exception:
        return None, False
    if (4 in codes and arrays) or 12 in codes:  # arrays are never keys; dbPointer: untracked
        return None, False
    ranks = sorted({_TYPE_RANKS[code] for code in codes - {4}})
    return [point(ks.NULL_KEY) if r == ks.RANK_NULL else bracket(r) for r in ranks], False
