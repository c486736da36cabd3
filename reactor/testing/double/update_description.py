"""``updateDescription`` as MongoDB 6+ reports it, from the before and after images of an update.

MongoDB derives it from the update's oplog diff, which is built two ways:

- **Modifier updates** (``$set``, ``$inc``, ``$push`` ...) log each path the update touched, at the
  granularity the update named it: ``$set {"a.b": 1}`` reports ``a.b``, ``$set {"a": {...}}``
  reports all of ``a``; a field created below an existing parent reports the first created field
  (``$set {"a.b.c": 1}`` with no ``a.b`` reports ``a.b: {c: 1}``); ``$push`` that appends reports
  each new element as ``arr.<index>``, while ``$pop``, ``$pull``, ``$addToSet`` and ``$push`` with
  ``$position``/``$sort``/``$slice`` report the whole array. ``$unset`` of an array element sets
  it to null. Paths with positional operators (``$``, ``$[]``, ``$[x]``) are diffed as below.
- **Pipeline updates** (and anything the double cannot attribute) are a structural diff:
  sub-documents and arrays are descended into when that is shorter than the new value, array
  elements report as ``arr.<index>``, and an array that got shorter appears in
  ``truncatedArrays`` as ``{field, newSize}``.

Paths are kept as components (field names as ``str``, array indices as ``int``);
``disambiguatedPaths`` (with ``showExpandedEvents``) lists those whose dotted form is ambiguous:
a numeric field name, or a field name containing a dot.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

import bson

Path = tuple[str | int, ...]
_MISSING: Any = object()
_SET_LIKE = frozenset({"$set", "$inc", "$mul", "$min", "$max", "$currentDate", "$bit"})
_WHOLE_ARRAY = frozenset({"$addToSet", "$pop", "$pull", "$pullAll"})
_PUSH_REORDERS = frozenset({"$position", "$sort", "$slice"})


@dataclass
class Delta:
    """What changed, path by path."""

    updated: dict[Path, Any] = field(default_factory=dict)
    removed: list[Path] = field(default_factory=list)
    truncated: list[tuple[Path, int]] = field(default_factory=list)

    def merge(self, other: Delta) -> None:
        self.updated.update(other.updated)
        self.removed += other.removed
        self.truncated += other.truncated

    def size(self) -> int:
        """A rough BSON size of this delta, to choose it over logging a whole value."""
        names = sum(len(dotted(p)) + 2 for p in [*self.updated, *self.removed])
        return names + sum(_bson_size(v) for v in self.updated.values()) + 8 * len(self.truncated)


def describe(before: Any, after: Any, update: Any, *, expanded: bool) -> dict[str, Any]:
    """The ``updateDescription`` of the update that turned ``before`` into ``after``."""
    delta = update_delta(before or {}, after or {}, update)
    description: dict[str, Any] = {
        "updatedFields": {dotted(p): copy.deepcopy(v) for p, v in delta.updated.items()},
        "removedFields": [dotted(p) for p in delta.removed],
        "truncatedArrays": [{"field": dotted(p), "newSize": n} for p, n in delta.truncated],
    }
    if expanded:
        paths = [*delta.updated, *delta.removed, *(p for p, _ in delta.truncated)]
        description["disambiguatedPaths"] = {dotted(p): list(p) for p in paths if _ambiguous(p)}
    return description


def dotted(path: Path) -> str:
    return ".".join(str(part) for part in path)


def _ambiguous(path: Path) -> bool:
    return any(isinstance(p, str) and (p.isdigit() or "." in p) for p in path)


def update_delta(before: dict[str, Any], after: dict[str, Any], update: Any) -> Delta:
    """The delta of a modifier update, or the structural diff for anything else."""
    if isinstance(update, dict) and update and all(str(k).startswith("$") for k in update):
        delta = _modifier_delta(before, after, update)
        if delta is not None:
            return delta
    delta = Delta()
    _diff_doc(before, after, (), delta)
    return delta


# Modifier updates.


def _modifier_delta(
    before: dict[str, Any], after: dict[str, Any], update: dict[str, Any]
) -> Delta | None:
    delta, diffed_fields = Delta(), set[str]()
    for operator, spec in update.items():
        if operator == "$setOnInsert":
            continue
        if not isinstance(spec, dict):
            return None
        for key, argument in spec.items():
            parts = str(key).split(".")
            if any(p == "$" or p.startswith("$[") for p in parts):
                diffed_fields.add(parts[0])
            elif not _log_operator(operator, parts, argument, before, after, delta, diffed_fields):
                return None
    for name in sorted(diffed_fields):
        old, new = before.get(name, _MISSING), after.get(name, _MISSING)
        _diff_field((name,), old, new, delta)
    return Delta(
        dict(sorted(delta.updated.items(), key=lambda item: dotted(item[0]))),
        sorted(delta.removed, key=dotted),
        delta.truncated,
    )


def _log_operator(
    operator: str,
    parts: list[str],
    argument: Any,
    before: dict[str, Any],
    after: dict[str, Any],
    delta: Delta,
    diffed_fields: set[str],
) -> bool:
    """Log one ``operator`` on one path; False for an operator the double does not know."""
    if operator in _SET_LIKE:
        _log_set(parts, before, after, delta, diffed_fields)
    elif operator == "$unset":
        _log_unset(parts, before, delta)
    elif operator == "$rename":
        _log_unset(parts, before, delta)
        if isinstance(argument, str):
            _log_set(argument.split("."), before, after, delta, diffed_fields)
    elif operator == "$push":
        _log_push(parts, argument, before, after, delta, diffed_fields)
    elif operator in _WHOLE_ARRAY:
        _log_set(parts, before, after, delta, diffed_fields)
    else:
        return False
    return True


def _resolve(doc: Any, parts: list[str]) -> tuple[Path, Any]:
    """The longest prefix of ``parts`` present in ``doc`` (indices as ints) and its value."""
    path: list[str | int] = []
    node = doc
    for part in parts:
        if isinstance(node, dict) and part in node:
            path.append(part)
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            path.append(int(part))
            node = node[int(part)]
        else:
            break
    return tuple(path), node


def _value_at(doc: Any, path: Path) -> Any:
    node = doc
    for part in path:
        node = _child(node, part)
        if node is _MISSING:
            break
    return node


def _child(node: Any, part: str | int) -> Any:
    if isinstance(node, list) and isinstance(part, int):
        return node[part] if part < len(node) else _MISSING
    if isinstance(node, dict) and isinstance(part, str):
        return node.get(part, _MISSING)
    return _MISSING


def _log_set(
    parts: list[str],
    before: dict[str, Any],
    after: dict[str, Any],
    delta: Delta,
    diffed_fields: set[str],
) -> None:
    """A path set to a value: reported as set, or from the first field it had to create."""
    path, old = _resolve(before, parts)
    if len(path) < len(parts):
        if isinstance(old, list):  # an index past the end: the array is padded with nulls
            diffed_fields.add(parts[0])
            return
        path = (*path, parts[len(path)])
        old = _MISSING
    new = _value_at(after, path)
    if new is _MISSING:
        diffed_fields.add(parts[0])
    elif old is _MISSING or not same(old, new):
        delta.updated[path] = new


def _log_unset(parts: list[str], before: dict[str, Any], delta: Delta) -> None:
    path, _ = _resolve(before, parts)
    if len(path) == len(parts):
        parent = _value_at(before, path[:-1])
        if isinstance(parent, list):  # $unset of an array element leaves a null in its place
            delta.updated[path] = None
        else:
            delta.removed.append(path)


def _log_push(
    parts: list[str],
    argument: Any,
    before: dict[str, Any],
    after: dict[str, Any],
    delta: Delta,
    diffed_fields: set[str],
) -> None:
    path, old = _resolve(before, parts)
    new = _value_at(after, path)
    reorders = isinstance(argument, dict) and bool(_PUSH_REORDERS & set(argument))
    appended = (
        len(path) == len(parts)
        and isinstance(old, list)
        and isinstance(new, list)
        and len(new) >= len(old)
        and same(old, new[: len(old)])
    )
    if appended and not reorders:
        for index in range(len(old), len(new)):
            delta.updated[(*path, index)] = new[index]
    else:
        _log_set(parts, before, after, delta, diffed_fields)


# Structural diff (pipeline updates).


def _diff_doc(old: dict[str, Any], new: dict[str, Any], prefix: Path, delta: Delta) -> None:
    for name, value in new.items():
        _diff_field((*prefix, name), old.get(name, _MISSING), value, delta)
    delta.removed += [(*prefix, name) for name in old if name not in new]


def _diff_field(path: Path, old: Any, new: Any, delta: Delta) -> None:
    if new is _MISSING:
        if old is not _MISSING:
            delta.removed.append(path)
    elif old is _MISSING:
        delta.updated[path] = new
    elif not same(old, new):
        sub = Delta()
        if isinstance(old, dict) and isinstance(new, dict):
            _diff_doc(old, new, path, sub)
        elif isinstance(old, list) and isinstance(new, list):
            _diff_array(old, new, path, sub)
        else:
            delta.updated[path] = new
            return
        if sub.size() < _bson_size(new):
            delta.merge(sub)
        else:
            delta.updated[path] = new


def _diff_array(old: list[Any], new: list[Any], path: Path, delta: Delta) -> None:
    for index, value in enumerate(new):
        if index >= len(old):
            delta.updated[(*path, index)] = value
        elif not same(old[index], value):
            nested = isinstance(value, (dict, list)) and type(old[index]) is type(value)
            if nested:
                _diff_field((*path, index), old[index], value, delta)
            else:
                delta.updated[(*path, index)] = value
    if len(new) < len(old):
        delta.truncated.append((path, len(new)))


def same(a: Any, b: Any) -> bool:
    """Binary equality, as MongoDB decides a no-op: 1 and 1.0 differ, field order counts."""
    if type(a) is not type(b):
        return False
    if isinstance(a, (str, int)):
        return bool(a == b)
    return bson.encode({"v": a}) == bson.encode({"v": b})


def _bson_size(value: Any) -> int:
    return len(bson.encode({"v": value}))
