"""One collection's records and indexes, kept consistent on every write.

Records are numbered in insertion order (the natural order); a stored document is never
mutated, so writes replace it with a new one and readers (cursors, change events) may keep
references. Every write checks all unique indexes and builds every key before it changes
anything: a write either happens completely or not at all.
"""

from __future__ import annotations

import itertools
from typing import Any

from reactor.testing.double.engine import keystring as ks
from reactor.testing.double.engine.index import ID_SPEC, Index, IndexSpec
from reactor.testing.double.engine.paths import MISSING, values_at
from reactor.testing.double.replies import CommandFailed, Doc


class DuplicateKey(CommandFailed):
    """E11000, with the index and key MongoDB reports."""

    def __init__(self, namespace: str, index: Index, doc: Doc) -> None:
        values = {field: _first(values_at(doc, field)) for field in index.fields}
        shown = ", ".join(f"{name}: {_show(value)}" for name, value in values.items())
        message = (
            f"E11000 duplicate key error collection: {namespace} index: {index.spec.name} "
            f"dup key: {{ {shown} }}"
        )
        extra = {"keyPattern": dict(index.spec.key), "keyValue": values}
        super().__init__(11000, message, extra=extra)


class Collection:
    """Records by number, ``_id`` lookups, and the indexes over them."""

    def __init__(self, db: str, name: str, options: Doc | None = None) -> None:
        self.db = db
        self.name = name
        self.options = options or {}
        self.records: dict[int, Doc] = {}
        self.indexes: dict[str, Index] = {"_id_": Index(ID_SPEC)}
        self._ids: dict[bytes, int] = {}
        self._keys_of: dict[int, dict[str, list[bytes]]] = {}  # each record's keys, by index
        self._numbers = itertools.count(1)

    @property
    def namespace(self) -> str:
        return f"{self.db}.{self.name}"

    def __len__(self) -> int:
        return len(self.records)

    def seq_of_id(self, doc_id: Any) -> int | None:
        return self._ids.get(ks.encode(doc_id))

    def by_id(self, doc_id: Any) -> Doc | None:
        seq = self.seq_of_id(doc_id)
        return None if seq is None else self.records[seq]

    def insert(self, doc: Doc) -> int:
        """Store ``doc`` (which must carry its ``_id``); its record number."""
        keys = self._keys(doc, None, list(self.indexes))
        seq = next(self._numbers)
        self._keys_of[seq] = {}
        self._commit(seq, keys)
        self.records[seq] = doc
        self._ids[ks.encode(doc["_id"])] = seq
        return seq

    def replace(self, seq: int, doc: Doc) -> None:
        """Replace record ``seq`` with ``doc`` (same ``_id``)."""
        old = self.records[seq]
        touched = [name for name, index in self.indexes.items() if index.touched_by(old, doc)]
        self._commit(seq, self._keys(doc, seq, touched))
        self.records[seq] = doc

    def delete(self, seq: int) -> Doc:
        doc = self.records.pop(seq)
        for name, keys in self._keys_of.pop(seq).items():
            self.indexes[name].remove(seq, keys)
        del self._ids[ks.encode(doc["_id"])]
        return doc

    def add_index(self, spec: IndexSpec) -> None:
        """Build an index over the existing records (11000 if a unique one finds duplicates)."""
        index = Index(spec)
        seen: dict[bytes, int] = {}
        built: dict[int, list[bytes]] = {}
        for seq, doc in self.records.items():
            keys = index.keys(doc)
            for key in keys if spec.unique else ():
                if key in seen and seen[key] != seq:
                    raise DuplicateKey(self.namespace, index, doc)
                seen[key] = seq
            index.add(seq, keys)
            built[seq] = keys
        self.indexes[spec.name] = index
        for seq, keys in built.items():
            self._keys_of[seq][spec.name] = keys

    def drop_index(self, name: str) -> None:
        del self.indexes[name]
        for keys in self._keys_of.values():
            keys.pop(name, None)

    def clear(self) -> None:
        self.records.clear()
        self._ids.clear()
        self._keys_of.clear()
        for index in self.indexes.values():
            index.clear()

    def _keys(self, doc: Doc, seq: int | None, names: list[str]) -> dict[str, list[bytes]]:
        """The keys of ``doc`` in the named indexes, after checking unique ones for collisions."""
        keys = {name: self.indexes[name].keys(doc) for name in names}
        for name in names:
            index = self.indexes[name]
            if not index.spec.unique:
                continue
            for key in keys[name]:
                if any(holder != seq for holder in index.holders(key)):
                    raise DuplicateKey(self.namespace, index, doc)
        return keys

    def _commit(self, seq: int, new: dict[str, list[bytes]]) -> None:
        held = self._keys_of[seq]
        for name, after in new.items():
            before = held.get(name, [])
            if before != after:
                self.indexes[name].remove(seq, before)
                self.indexes[name].add(seq, after)
            held[name] = after


def _first(values: list[Any]) -> Any:
    value = values[0] if values else MISSING
    return None if value is MISSING else value


def _show(value: Any) -> str:
    if isinstance(value, str):
        return '"' + value.replace('"', '\\"') + '"'
    return str(value)
