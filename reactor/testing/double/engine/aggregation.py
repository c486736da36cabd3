"""Aggregation pipelines: the engine's own ``$match``, ``$sort``, ``$skip``, ``$limit``; mongomock's
other stages; where MongoDB lets each stage stand.

A leading ``$match`` (and a ``$sort`` right after it) is planned like a find, so it uses the
indexes. A pipeline run with ``aggregate: 1`` starts from ``$documents`` instead of a collection.
The rest of the stages run through mongomock's stage handlers on copies of the
documents; ``$lookup``/``$graphLookup`` read and ``$out`` writes the engine's collections
through :class:`_Database`. ``$out`` writes produce no change events; ``$merge`` is not run here
(the ``aggregate`` command takes it off and writes with :mod:`engine.merge`).
"""

from __future__ import annotations

from typing import Any

from reactor.testing.double.engine import query
from reactor.testing.double.engine.catalog import Catalog
from reactor.testing.double.engine.crud import with_id
from reactor.testing.double.engine.paths import deep_copy
from reactor.testing.double.engine.pipeline import apply_stage, split_stage
from reactor.testing.double.engine.types import type_name
from reactor.testing.double.projection import evaluate
from reactor.testing.double.replies import CommandFailed, Doc, not_supported

OUTPUT_STAGES = ("$out", "$merge")
_CONTAINERS = {
    "$facet": (40600, "is not allowed to be used within a $facet stage"),
    "$lookup": (51047, "is not allowed within a $lookup's sub-pipeline"),
    "$unionWith": (31441, "is not allowed within a $unionWith's sub-pipeline"),
}


def run_pipeline(catalog: Catalog, db: str, name: str | None, pipeline: list[Any]) -> list[Doc]:
    """The documents ``pipeline`` makes of collection ``db.name`` (None: of its ``$documents``)."""
    stages = [split_stage(stage) for stage in pipeline]
    if name is None:
        docs, rest = documents(stages[0][1]), stages[1:]
    else:
        match, sort, rest = {}, None, stages
        if rest and rest[0][0] == "$match":
            match, rest = rest[0][1], rest[1:]
        if rest and rest[0][0] == "$sort":
            sort, rest = rest[0][1], rest[1:]
        found = query.find(catalog.get(db, name), match, sort=sort)
        docs = [deep_copy(doc) for _, doc in found]
    database = _Database(catalog, db)
    for operator, options in rest:
        if operator == "$out":
            docs = database.out(options, docs)
        else:
            docs = apply_stage(docs, operator, options, database)
    return docs


def documents(expression: Any) -> list[Doc]:
    """What ``$documents`` produces: its expression, evaluated with no input document.

    MongoDB runs it as ``$queue`` of one empty document, ``$project`` of the expression,
    ``$unwind`` that requires an array (5858203) and ``$replaceRoot`` that requires objects.
    """
    if isinstance(expression, list):
        value: Any = [_value(item) for item in expression]
    else:
        value = _value(expression)
    if not isinstance(value, list):
        raise CommandFailed(5858203, "an array is expected")
    for item in value:
        if not isinstance(item, dict):
            raise CommandFailed(
                40228,
                f"'newRoot' must evaluate to an object, but resulting value was: {item!r}. "
                f"Type of resulting value: '{type_name(item)}'.",
            )
    return value


def _value(expression: Any) -> Any:
    found, value = evaluate(expression, {})
    return value if found else None


def check_positions(pipeline: list[Any]) -> None:
    """Where MongoDB lets a stage stand: 40601, 40602, and no writes in sub-pipelines.

    ``$out`` and ``$merge`` only last (40601), never inside ``$facet`` (40600), a ``$lookup``
    (51047) or a ``$unionWith`` (31441) sub-pipeline; ``$documents`` only first (40602).
    """
    stages = [split_stage(stage) for stage in pipeline]
    for index, (operator, options) in enumerate(stages):
        if operator in OUTPUT_STAGES and index != len(stages) - 1:
            raise CommandFailed(40601, f"{operator} can only be the final stage in the pipeline")
        if operator == "$documents" and index:
            raise CommandFailed(40602, "$documents is only valid as the first stage in a pipeline.")
        _check_nested(operator, options)


def _check_nested(operator: str, options: Any) -> None:
    container = _CONTAINERS.get(operator)
    if container is None:
        return
    for pipeline in _sub_pipelines(operator, options):
        for stage in pipeline:
            if not isinstance(stage, dict) or len(stage) != 1:
                continue
            ((name, inner),) = stage.items()
            if name in OUTPUT_STAGES:
                code, text = container
                raise CommandFailed(code, f"{name} {text}")
            _check_nested(name, inner)


def _sub_pipelines(operator: str, options: Any) -> list[list[Any]]:
    if not isinstance(options, dict):
        return []
    if operator == "$facet":
        return [value for value in options.values() if isinstance(value, list)]
    pipeline = options.get("pipeline")
    return [pipeline] if isinstance(pipeline, list) else []


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
        return []  # a pipeline that writes answers an empty cursor


class _View:
    def __init__(self, catalog: Catalog, db: str, name: str) -> None:
        self._catalog, self._db, self._name = catalog, db, name

    def find(self, spec: Doc | None = None) -> list[Doc]:
        coll = self._catalog.get(self._db, self._name)
        return [deep_copy(doc) for _, doc in query.find(coll, spec or {})]
