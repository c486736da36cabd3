"""One index: its specification, its keys per document, and its sorted entries.

An entry is ``key + seq``: the document's :mod:`keystring` key for the index fields (descending
fields inverted), then the 8-byte record number, in a ``sortedcontainers.SortedList`` of bytes,
so a range scan is a bisection and comparisons run in C. A missing field keys as null, an array
field as one key per element (the index becomes multikey; an empty array keys as undefined), a
document outside a partial index's filter (or without any field of a sparse one) has no key.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from sortedcontainers import SortedList

from reactor.testing.double.engine import keystring as ks
from reactor.testing.double.engine.matcher import Predicate, compile_filter
from reactor.testing.double.engine.paths import MISSING, same, split, values_at
from reactor.testing.double.replies import CommandFailed, Doc

SEQ_BYTES = 8
_SEQ_MAX = b"\xff" * SEQ_BYTES


@dataclass(frozen=True)
class IndexSpec:
    """What ``createIndexes`` asked for, as ``listIndexes`` reports it back."""

    name: str
    key: tuple[tuple[str, Any], ...]
    unique: bool = False
    sparse: bool = False
    partial: Doc | None = None
    expire_after_s: float | None = None
    hidden: bool = False
    echoed: tuple[tuple[str, Any], ...] = field(default=(), compare=False)  # e.g. background

    def info(self) -> Doc:
        doc: Doc = {"v": 2, "key": dict(self.key), "name": self.name, **dict(self.echoed)}
        if self.unique:
            doc["unique"] = True
        if self.sparse:
            doc["sparse"] = True
        if self.partial is not None:
            doc["partialFilterExpression"] = self.partial
        if self.expire_after_s is not None:
            doc["expireAfterSeconds"] = self.expire_after_s
        if self.hidden:
            doc["hidden"] = True
        return doc


ID_SPEC = IndexSpec("_id_", (("_id", 1),), unique=True)
SPECIAL_KINDS = frozenset({"2d", "2dsphere", "hashed"})


class Index:
    """The entries of one index over one collection's records."""

    def __init__(self, spec: IndexSpec) -> None:
        self.spec = spec
        self.fields = [field for field, _ in spec.key]
        self.paths = [split(field) for field in self.fields]
        # geo and hashed indexes are listed but hold no keys: the planner never uses them
        self.special = any(isinstance(value, str) for _, value in spec.key)
        self.descending = [not self.special and _direction(value) < 0 for _, value in spec.key]
        self.entries: SortedList[bytes] = SortedList()
        self.multikey = False
        self.is_id = spec.name == "_id_"
        self._partial: Predicate | None = (
            compile_filter(spec.partial) if spec.partial is not None else None
        )
        self._roots = _roots(self.fields, spec.partial)
        self._top_level = all(len(path) == 1 for path in self.paths)
        self.planner_cache: dict[str, Any] = {}

    def touched_by(self, old: Doc, new: Doc) -> bool:
        """Whether replacing ``old`` by ``new`` may change this index's keys."""
        if self._roots is None:
            return True
        return not all(same(old.get(root, MISSING), new.get(root, MISSING)) for root in self._roots)

    def keys(self, doc: Doc) -> list[bytes]:
        """The keys ``doc`` has in this index (none when the index leaves it out)."""
        if self.special or (self._partial is not None and not self._partial(doc)):
            return []
        if self._top_level:
            fast = self._top_level_key(doc)
            if fast is not None:
                return fast
        return self._keys_along_paths(doc)

    def _top_level_key(self, doc: Doc) -> list[bytes] | None:
        """The one key of a document whose indexed top-level fields hold no arrays (or None)."""
        parts: list[bytes] = []
        present = False
        for name, descending in zip(self.fields, self.descending, strict=True):
            value = doc.get(name, MISSING)
            if type(value) is list:
                return None
            present = present or value is not MISSING
            key = ks.NULL_KEY if value is MISSING or value is None else ks.encode(value)
            parts.append(ks.invert(key) if descending else key)
        if self.spec.sparse and not present:
            return []
        return [b"".join(parts)]

    def _keys_along_paths(self, doc: Doc) -> list[bytes]:
        per_field: list[list[bytes]] = []
        arrays, present = 0, False
        for path, descending in zip(self.paths, self.descending, strict=True):
            values = values_at(doc, path)
            keys, from_array = _field_keys(values)
            present = present or any(value is not MISSING for value in values)
            arrays += from_array
            per_field.append([ks.invert(k) for k in keys] if descending else keys)
        if self.spec.sparse and not present:
            return []
        if arrays > 1:
            raise CommandFailed(171, f"cannot index parallel arrays in index {self.spec.name}")
        if arrays:
            self.multikey = True
        if len(per_field) == 1:
            return per_field[0]
        return [b"".join(parts) for parts in itertools.product(*per_field)]

    def add(self, seq: int, keys: list[bytes]) -> None:
        suffix = seq.to_bytes(SEQ_BYTES, "big")
        for key in keys:
            self.entries.add(key + suffix)

    def remove(self, seq: int, keys: list[bytes]) -> None:
        suffix = seq.to_bytes(SEQ_BYTES, "big")
        for key in keys:
            self.entries.discard(key + suffix)

    def holders(self, key: bytes) -> Iterator[int]:
        """Record numbers holding exactly ``key``."""
        for entry in self.entries.irange(key, key + _SEQ_MAX):
            yield int.from_bytes(entry[-SEQ_BYTES:], "big")

    def clear(self) -> None:
        self.entries.clear()
        self.multikey = False


def _roots(fields: list[str], partial: Doc | None) -> tuple[str, ...] | None:
    """The top-level fields the keys depend on; None when that cannot be told simply."""
    names = [field.split(".")[0] for field in fields]
    for key in partial or {}:
        if key.startswith("$"):
            return None
        names.append(key.split(".")[0])
    return tuple(dict.fromkeys(names))


def _field_keys(values: list[Any]) -> tuple[list[bytes], bool]:
    if len(values) == 1:
        value = values[0]
        if value is MISSING or value is None:
            return [ks.NULL_KEY], False
        if type(value) is not list:
            return [ks.encode(value)], False
    keys: set[bytes] = set()
    from_array = len(values) > 1
    for value in values:
        if value is MISSING or value is None:
            keys.add(ks.NULL_KEY)
        elif type(value) is list:
            from_array = True
            keys.update(ks.encode(item) for item in value)
            if not value:
                keys.add(ks.UNDEFINED_KEY)
        else:
            keys.add(ks.encode(value))
    return sorted(keys), from_array


def _direction(value: Any) -> int:
    if isinstance(value, int | float) and not isinstance(value, bool) and value != 0:
        return 1 if value > 0 else -1
    raise CommandFailed(67, f"Values in the index key pattern can't be {value!r}")


def seq_of(entry: bytes) -> int:
    return int.from_bytes(entry[-SEQ_BYTES:], "big")
