"""Reading documents for change events: by ``_id`` from mongomock's store, and by query.

mongomock answers ``find_one({"_id": x})`` by testing every document; the double looks documents
up by id several times per write, so :func:`by_id` reads mongomock's id-keyed store directly
(falling back to ``find_one`` if that store ever changes shape).
"""

from __future__ import annotations

import copy
import datetime as dt
from typing import Any

from mongomock import helpers

from reactor.testing.replies import Doc


def by_id(coll: Any, doc_id: Any) -> Doc | None:
    """A copy of the document with ``_id`` ``doc_id`` in the mongomock collection, or None."""
    store = getattr(coll, "_store", None)
    if store is None or isinstance(doc_id, dt.datetime):
        return _scan(coll, doc_id)
    key = helpers.hashdict(doc_id) if isinstance(doc_id, dict) else doc_id
    try:
        found = store[key]
    except KeyError:
        return None
    except TypeError:  # an unhashable _id mongomock keeps some other way
        return _scan(coll, doc_id)
    return copy.deepcopy(dict(found))


def matching(coll: Any, query: Doc, *, sort: Any = None, limit: int = 0) -> list[Doc]:
    """Copies of the documents matching ``query`` in ``sort`` order, at most ``limit`` (0: all).

    Only the ``_id`` s go through mongomock's cursor (which copies every match before applying
    the limit); the documents themselves are then read by id.
    """
    cursor = coll.find(query, {"_id": 1}, sort=sort)
    ids = [doc["_id"] for doc in cursor.limit(limit)]
    return [doc for doc in (by_id(coll, doc_id) for doc_id in ids) if doc is not None]


def pinned(query: Doc, doc_id: Any) -> Doc:
    """``query`` narrowed to one document, ``_id`` first so other documents fail fast.

    The other predicates stay, so the positional ``$`` of an update still finds its element.
    """
    if "_id" in query:
        return {"$and": [{"_id": doc_id}, query]}
    return {"_id": doc_id, **query}


def _scan(coll: Any, doc_id: Any) -> Doc | None:
    found: Doc | None = coll.find_one({"_id": doc_id})
    return found
