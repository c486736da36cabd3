"""Aggregation pipelines: the engine's own ``$match``, ``$sort``, ``$skip``, ``$limit``; mongomock's
other stages.

A leading ``$match`` (and a ``$sort`` right after it) is planned like a find, so it uses the
indexes. The rest of the stages run through mongomock's stage handlers on copies of the
documents; ``$lookup``/``$graphLookup`` read and ``$out`` writes the engine's collections
through :class:`_Database`. ``$out`` writes produce no change events.
"""

from __future__ import annotations

from typing import Any

from reactor.testing.double.engine import query
from reactor.testing.double.engine.catalog import Catalog
from reactor.testing.double.engine.crud import with_id
from reactor.testing.double.engine.paths import deep_copy
from reactor.testing.double.engine.pipeline import apply_stage, split_stage
from reactor.testing.double.replies import Doc, not_supported


def run_pipeline(catalog: Catalog, db: str, name: str, pipeline: list[Any]) -> list[Doc]:
    """The documents ``pipeline`` makes of collection ``db.name``."""
    stages = [split_stage(stage) for stage in pipeline]
    match, sort, rest = {}, None, stages
    if rest and rest[0][0] == "$match":
        match, rest = rest[0][1], rest[1:]
    if rest and rest[0][0] == "$sort":
        sort, rest = rest[0][1], rest[1:]
    docs = [deep_copy(doc) for _, doc in query.find(catalog.get(db, name), match, sort=sort)]
    database = _Database(catalog, db)
    for operator, options in rest:
        if operator == "$out":
            docs = database.out(options, docs)
        else:
            docs = apply_stage(docs, operator, options, database)
    return docs


class _Database:
    """What mongomock's ``$lookup``, ``$graphLookup`` and ``$facet`` handlers ask of a database."""

    def __init__(self, catalog: Catalog, db: str) -> None:
        self._catalog = catalog
        self._db = db

    def get_collection(self, name: str) -> _View:
        return _View(self._catalog, self._db, name)

    def out(self, name: Any, docs: list[Doc]) -> list[Doc]:
        if not isinstance(name, str):
            raise not_supported("$out to another database")
        target = self._catalog.ensure(self._db, name)
        target.clear()
        for doc in docs:
            target.insert(with_id(deep_copy(doc)))
        return docs


class _View:
    def __init__(self, catalog: Catalog, db: str, name: str) -> None:
        self._catalog, self._db, self._name = catalog, db, name

    def find(self, spec: Doc | None = None) -> list[Doc]:
        coll = self._catalog.get(self._db, self._name)
        return [deep_copy(doc) for _, doc in query.find(coll, spec or {})]
