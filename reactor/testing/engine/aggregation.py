"""Aggregation pipelines: the engine's own ``$match``, ``$sort``, ``$skip``, ``$limit``; mongomock's
other stages.

A leading ``$match`` (and a ``$sort`` right after it) is planned like a find, so it uses the
indexes. The rest of the stages run through mongomock's stage handlers on copies of the
documents; ``$lookup``/``$graphLookup`` read and ``$out`` writes the engine's collections
through :class:`_Database`. ``$out`` writes produce no change events.
"""

from __future__ import annotations

from typing import Any

from mongomock import aggregate as mongomock_aggregate
from pymongo.errors import OperationFailure

from reactor.testing.engine import query
from reactor.testing.engine.catalog import Catalog
from reactor.testing.engine.crud import with_id
from reactor.testing.engine.matcher import compile_filter
from reactor.testing.engine.paths import deep_copy
from reactor.testing.engine.sorting import parse_sort, sort_key
from reactor.testing.replies import CommandFailed, Doc, not_supported


def run_pipeline(catalog: Catalog, db: str, name: str, pipeline: list[Any]) -> list[Doc]:
    """The documents ``pipeline`` makes of collection ``db.name``."""
    stages = [_stage(stage) for stage in pipeline]
    match, sort, rest = {}, None, stages
    if rest and rest[0][0] == "$match":
        match, rest = rest[0][1], rest[1:]
    if rest and rest[0][0] == "$sort":
        sort, rest = rest[0][1], rest[1:]
    docs = [deep_copy(doc) for _, doc in query.find(catalog.get(db, name), match, sort=sort)]
    database = _Database(catalog, db)
    for operator, options in rest:
        docs = _apply(docs, operator, options, database)
    return docs


def _stage(stage: Any) -> tuple[str, Any]:
    if not isinstance(stage, dict) or len(stage) != 1:
        raise CommandFailed(
            40323, "A pipeline stage specification object must contain exactly one field."
        )
    ((operator, options),) = stage.items()
    return operator, options


def _apply(docs: list[Doc], operator: str, options: Any, database: _Database) -> list[Doc]:
    if operator == "$match":
        test = compile_filter(options)
        return [doc for doc in docs if test(doc)]
    if operator == "$sort":
        key = sort_key(parse_sort(options))
        return sorted(docs, key=key)
    if operator in {"$skip", "$limit"}:
        if not isinstance(options, int) or isinstance(options, bool) or options < 0:
            raise CommandFailed(
                15956 if operator == "$skip" else 15957, f"invalid argument to {operator}"
            )
        return docs[options:] if operator == "$skip" else docs[:options]
    if operator == "$out":
        return database.out(options, docs)
    handlers: dict[str, Any] = mongomock_aggregate._PIPELINE_HANDLERS
    if operator not in handlers:
        raise CommandFailed(40324, f"Unrecognized pipeline stage name: '{operator}'")
    handler = handlers[operator]
    if handler is None:
        raise not_supported(f"the aggregation stage {operator}")
    try:
        out = list(handler(docs, database, options))
    except OperationFailure as exc:
        raise CommandFailed(exc.code or 2, str(exc)) from exc
    except NotImplementedError as exc:
        raise not_supported(f"{operator} as used here ({exc})") from exc
    if operator == "$group":  # MongoDB puts the group key first; mongomock puts it last
        out = [
            {"_id": doc.get("_id"), **{k: v for k, v in doc.items() if k != "_id"}} for doc in out
        ]
    return out


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
