"""The ``$merge`` stage's specification, parsed and checked as MongoDB 8.0 parses it.

``{$merge: "coll"}`` or ``{$merge: {into, on, let, whenMatched, whenNotMatched}}``: ``into`` a
collection name or ``{db, coll}`` (the command's database when ``db`` is absent), ``on`` a field
or a list of them (``_id`` by default), ``whenMatched`` one of ``replace``, ``keepExisting``,
``merge`` (the default), ``fail`` or an update pipeline, ``whenNotMatched`` one of ``insert``
(the default), ``discard``, ``fail``. Every error is the one ``document_source_merge_spec.cpp``
and ``document_source_merge.cpp`` raise: 14 for a spec that is neither a string nor an object,
40414/40415 for a missing or unknown field, 51178 and friends for the wrong types, 51181 for a
combination of modes MongoDB does not support, 51199/51273 for ``let`` misuse, 73 for an invalid
target namespace, 31319/31320 for system collections and internal databases.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from reactor.testing.double.engine.pipeline import KNOWN_STAGES, split_stage
from reactor.testing.double.engine.types import type_name
from reactor.testing.double.engine.variables import check_variable_name
from reactor.testing.double.replies import CommandFailed, Doc

WHEN_MATCHED = ("replace", "keepExisting", "merge", "fail")
WHEN_NOT_MATCHED = ("insert", "discard", "fail")
_SUPPORTED = {
    (mode, absent) for mode in ("replace", "merge", "pipeline") for absent in WHEN_NOT_MATCHED
} | {("keepExisting", "insert"), ("fail", "insert")}
_FIELDS = frozenset({"into", "on", "let", "whenMatched", "whenNotMatched"})
_INTERNAL_FIELDS = frozenset({"targetCollectionVersion"})
_INTERNAL_DATABASES = frozenset({"admin", "local", "config"})
_BAD_DB_CHARACTERS = frozenset('/\\. "$*<>:|?\x00')


@dataclass(frozen=True)
class MergeSpec:
    """A parsed ``$merge``: its target, ``on`` fields and modes (``pipeline`` when an array)."""

    db: str
    coll: str
    on: tuple[str, ...] | None  # None: not given (``_id``)
    when_matched: str = "merge"
    when_not_matched: str = "insert"
    pipeline: list[Any] | None = None
    let: Doc | None = None

    @property
    def on_fields(self) -> tuple[str, ...]:
        return self.on or ("_id",)

    @property
    def inserts(self) -> bool:
        return self.when_not_matched == "insert"


def parse_merge(spec: Any, default_db: str) -> MergeSpec:
    """The ``$merge`` stage of a pipeline run on ``default_db``, or MongoDB's error for it."""
    if type_name(spec) == "string":
        parsed = MergeSpec(default_db, _into_string(spec), None)
    elif isinstance(spec, dict):
        parsed = _parse_object(spec, default_db)
    else:
        raise CommandFailed(
            14, f"$merge requires a string or object argument, but found {type_name(spec)}"
        )
    _check_namespace(parsed.db, parsed.coll)
    if (parsed.when_matched, parsed.when_not_matched) not in _SUPPORTED:
        raise CommandFailed(
            51181,
            f"Combination of $merge modes 'whenMatched: {parsed.when_matched}' and "
            f"'whenNotMatched: {parsed.when_not_matched}' is not supported",
        )
    return parsed


def check_merge_target(spec: MergeSpec) -> None:
    """What MongoDB checks once the ``on`` fields are resolved: the target and ``let``."""
    if spec.coll.startswith("system."):
        raise CommandFailed(31319, f"Cannot $merge to special collection: {spec.coll}")
    if spec.db in _INTERNAL_DATABASES:
        raise CommandFailed(31320, f"Cannot $merge to internal database: {spec.db}")
    if spec.when_matched != "pipeline":
        if spec.let is not None:
            raise CommandFailed(
                51199, f"Cannot use 'let' variables with 'whenMatched: {spec.when_matched}' mode"
            )
        return
    if (spec.let or {}).get("new", "$$ROOT") != "$$ROOT":
        raise CommandFailed(
            51273,
            "'let' may not define a value for the reserved 'new' variable other than '$$ROOT'",
        )
    for name in spec.let or {}:
        check_variable_name(name)


def _parse_object(spec: Doc, default_db: str) -> MergeSpec:
    for name in spec:
        if name not in _FIELDS and name not in _INTERNAL_FIELDS:
            raise CommandFailed(40415, f"BSON field '$merge.{name}' is an unknown field.")
    if "into" not in spec:
        raise CommandFailed(40414, "BSON field '$merge.into' is missing but a required field")
    db, coll = _into(spec["into"], default_db)
    when_matched, pipeline = _when_matched(spec.get("whenMatched", "merge"))
    let = spec.get("let")
    if let is not None and not isinstance(let, dict):
        raise CommandFailed(
            14,
            f"BSON field '$merge.let' is the wrong type '{type_name(let)}', expected type 'object'",
        )
    return MergeSpec(
        db,
        coll,
        _on(spec["on"]) if "on" in spec else None,
        when_matched,
        _when_not_matched(spec.get("whenNotMatched", "insert")),
        pipeline,
        let,
    )


def _into_string(name: str) -> str:
    if not name:
        raise CommandFailed(5786800, "$merge 'into' field cannot be an empty string")
    return name


def _into(into: Any, default_db: str) -> tuple[str, str]:
    kind = type_name(into)
    if kind == "string":
        return default_db, _into_string(into)
    if kind != "object":
        raise CommandFailed(
            51178, f"$merge 'into' field  must be either a string or an object, but found {kind}"
        )
    for name, value in into.items():
        if name not in ("db", "coll"):
            raise CommandFailed(40415, f"BSON field 'into.{name}' is an unknown field.")
        if value is not None and type_name(value) != "string":
            raise CommandFailed(
                14,
                f"BSON field 'into.{name}' is the wrong type '{type_name(value)}', "
                "expected type 'string'",
            )
    coll = into.get("coll")
    if not coll:
        raise CommandFailed(
            5786801,
            "$merge 'into' field must specify a 'coll' that is not empty, null or undefined",
        )
    return into.get("db") or default_db, coll


def _on(on: Any) -> tuple[str, ...]:
    kind = type_name(on)
    if kind not in ("string", "array"):
        raise CommandFailed(
            51186,
            f"$merge 'on' field  must be either a string or an array of strings, but found {kind}",
        )
    fields = [on] if kind == "string" else on
    for item in fields:
        if type_name(item) != "string":
            raise CommandFailed(
                51134, f"$merge 'on' array elements must be strings, but found {type_name(item)}"
            )
    if not fields:
        raise CommandFailed(
            51187, "If explicitly specifying $merge 'on', must include at least one field"
        )
    for index, name in enumerate(fields):
        _check_field_path(name)
        if name in fields[:index]:
            raise CommandFailed(31465, f"Found a duplicate field '{name}'")
    return tuple(fields)


def _check_field_path(path: str) -> None:
    """MongoDB's ``FieldPath`` rules for an ``on`` field."""
    if not path:
        raise CommandFailed(40352, "FieldPath cannot be constructed with empty string")
    if path.startswith("$"):
        raise CommandFailed(
            16410,
            "FieldPath field names may not start with '$'. Consider using $getField or $setField.",
        )
    if "" in path.split("."):
        raise CommandFailed(15998, "FieldPath field names may not be empty strings.")


def _when_matched(value: Any) -> tuple[str, list[Any] | None]:
    kind = type_name(value)
    if kind == "array":
        for stage in value:
            if not isinstance(stage, dict):
                raise CommandFailed(14, "Each element of the 'pipeline' array must be an object")
            name, _ = split_stage(stage)
            if name not in KNOWN_STAGES:
                raise CommandFailed(40324, f"Unrecognized pipeline stage name: '{name}'")
        return "pipeline", list(value)
    if kind != "string":
        raise CommandFailed(
            51191,
            f"$merge 'whenMatched' field  must be either a string or an array, but found {kind}",
        )
    if value not in WHEN_MATCHED:
        raise CommandFailed(
            2, f"Enumeration value '{value}' for field 'whenMatched' is not a valid value."
        )
    return str(value), None


def _when_not_matched(value: Any) -> str:
    if type_name(value) != "string":
        raise CommandFailed(
            14,
            f"BSON field '$merge.whenNotMatched' is the wrong type '{type_name(value)}', "
            "expected type 'string'",
        )
    if value not in WHEN_NOT_MATCHED:
        raise CommandFailed(
            2,
            f"Enumeration value '{value}' for field '$merge.whenNotMatched' is not a valid value.",
        )
    return str(value)


def _check_namespace(db: str, coll: str) -> None:
    valid_db = bool(db) and not _BAD_DB_CHARACTERS & set(db)
    valid_coll = not coll.startswith(".") and "$" not in coll and "\x00" not in coll
    if not (valid_db and valid_coll):
        raise CommandFailed(73, f"Invalid $merge target namespace: '{db}.{coll}'")
