"""Write errors in MongoDB's shape, above all E11000 with the index, keyPattern and keyValue.

mongomock only says "E11000 Duplicate Key Error"; the index is found again here by asking which
unique index already holds the offending document's key values.
"""

from __future__ import annotations

import json
from typing import Any

from pymongo.errors import DuplicateKeyError

from reactor.testing.replies import Doc, error_code

_MISSING: Any = object()


def write_error(index: int, exc: Exception, coll: Any, candidate: Doc) -> Doc:
    """The ``writeErrors`` entry for the ``index``-th operation of a batch that raised ``exc``."""
    if isinstance(exc, DuplicateKeyError):
        return {"index": index, **duplicate_key(coll, candidate)}
    code, message = error_code(exc) or (2, f"{type(exc).__name__}: {exc}")
    return {"index": index, "code": code, "errmsg": message}


def duplicate_key(coll: Any, candidate: Doc) -> Doc:
    """``{code, errmsg, keyPattern, keyValue}`` for ``candidate`` colliding in ``coll``."""
    name, pattern, values = _colliding_index(coll, candidate)
    shown = ", ".join(f"{key}: {_show(value)}" for key, value in values.items())
    message = (
        f"E11000 duplicate key error collection: {coll.full_name} index: {name} "
        f"dup key: {{ {shown} }}"
    )
    return {"code": 11000, "errmsg": message, "keyPattern": pattern, "keyValue": values}


def _colliding_index(coll: Any, candidate: Doc) -> tuple[str, Doc, Doc]:
    unique = [
        (name, dict(info["key"]))
        for name, info in coll.index_information().items()
        if name == "_id_" or info.get("unique")
    ]
    for name, pattern in unique:
        values = {key: _value(candidate, key) for key in pattern}
        if _MISSING in values.values():
            continue
        if coll.count_documents(values, limit=1):
            return name, pattern, values
    name, pattern = unique[-1] if unique else ("_id_", {"_id": 1})
    values = {key: _value(candidate, key) for key in pattern}
    return name, pattern, {k: (None if v is _MISSING else v) for k, v in values.items()}


def _value(doc: Doc, path: str) -> Any:
    if path in doc:
        return doc[path]
    node: Any = doc
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return _MISSING
        node = node[part]
    return node


def _show(value: Any) -> str:
    if isinstance(value, str):
        return json.dumps(value)
    return str(value)


def update_candidate(update: Any) -> Doc:
    """The fields an update writes, to find the unique index it collided on."""
    if not isinstance(update, dict):
        return {}
    if not any(key.startswith("$") for key in update):
        return update
    fields: Doc = {}
    for operator in ("$setOnInsert", "$set"):
        spec = update.get(operator)
        if isinstance(spec, dict):
            fields.update(spec)
    return fields
