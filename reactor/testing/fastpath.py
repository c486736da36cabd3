"""Short cuts for mongomock's document scans, installed per collection by :func:`accelerate`.

mongomock answers every query, unique-index check included, by running its matcher on every
document. Two short cuts keep the double usable with thousands of documents, without changing
which documents match:

- a filter naming a plain ``_id`` value reads that one document from mongomock's id-keyed store;
- a filter with conjunctive equality predicates on top-level fields (``{job_id: "j1", ...}``,
  also inside ``$and``) skips, before running the matcher, the documents holding a different
  value of the same simple type in one of those fields: they cannot match.

Both fall back to mongomock's own scan when its internals are not what they expect.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Iterator
from typing import Any

from bson.objectid import ObjectId
from bson.regex import Regex
from mongomock import helpers

from reactor.testing.replies import Doc
from reactor.testing.stages import matches

_ANY: Any = object()
_SIMPLE_TYPES = (str, int, ObjectId)


def accelerate(coll: Any) -> Any:
    """``coll`` with its document scan short-cut (idempotent)."""
    scan = getattr(coll, "_iter_documents", None)
    if scan is None or getattr(scan, "double_fast_path", False) or not hasattr(coll, "_store"):
        return coll

    def iter_documents(query: Any) -> Iterator[Any]:
        if not isinstance(query, dict):
            return iter(scan(query))
        doc_id = query.get("_id", _ANY)
        if _plain_id(doc_id):
            return _by_id(coll, scan, query, doc_id)
        pairs = _equalities(query)
        docs = list(coll._store.documents) if pairs else []
        if not docs:
            return iter(scan(query))
        return (doc for doc in docs if _may_match(doc, pairs) and matches(query, doc))

    iter_documents.double_fast_path = True  # type: ignore[attr-defined]
    coll._iter_documents = iter_documents
    return coll


def _by_id(coll: Any, scan: Any, query: Doc, doc_id: Any) -> Iterator[Any]:
    key = helpers.hashdict(doc_id) if isinstance(doc_id, dict) else doc_id
    try:
        found = coll._store[key]
    except KeyError:
        return iter(())
    except TypeError:
        return iter(scan(query))
    return iter([found] if matches(query, found) else [])


def _plain_id(value: Any) -> bool:
    """An ``_id`` query value that means plain equality (not an operator, regex or array)."""
    if value is _ANY or isinstance(value, (list, re.Pattern, Regex, dt.datetime)):
        return False
    return not (isinstance(value, dict) and any(str(key).startswith("$") for key in value))


def _equalities(query: Doc) -> list[tuple[str, Any]]:
    """The ``field == simple value`` conjuncts of ``query`` (top-level fields only)."""
    pairs: list[tuple[str, Any]] = []
    for key, value in query.items():
        if key == "$and" and isinstance(value, list):
            pairs.extend(_conjuncts(value))
        elif not key.startswith("$") and "." not in key and _simple(value):
            pairs.append((key, value))
    return pairs


def _conjuncts(clauses: Iterable[Any]) -> list[tuple[str, Any]]:
    pairs: list[tuple[str, Any]] = []
    for clause in clauses:
        if isinstance(clause, dict):
            pairs.extend(_equalities(clause))
    return pairs


def _simple(value: Any) -> bool:
    return type(value) in _SIMPLE_TYPES


def _may_match(doc: Any, pairs: list[tuple[str, Any]]) -> bool:
    """False only when a field holds a different value of the very same simple type."""
    for key, value in pairs:
        held = doc.get(key, _ANY)
        if type(held) is type(value) and held != value:
            return False
    return True
