"""Aggregation expressions: mongomock's evaluator, plus the field operators it lacks.

``$getField``, ``$setField`` and ``$unsetField`` (MongoDB 5.0) read and write field names a
path cannot spell: names that start with ``$`` or contain dots. They are evaluated here, with
their arguments evaluated recursively; every other expression goes to mongomock's evaluator.
Inside another operator (``{"$cond": [..., {"$getField": ...}]}``) mongomock meets them and
the expression answers 238, as everything mongomock cannot evaluate does. ``$switch`` is checked
here for MongoDB's shape (40060-40068) before mongomock evaluates it, and its no-matching-branch
failure answers MongoDB's 40066.

:func:`evaluate` raises ``KeyError`` for a missing value, as mongomock's evaluator does with
``ignore_missing_keys``.
"""

from __future__ import annotations

from typing import Any

from mongomock.aggregate import _parse_expression
from pymongo.errors import OperationFailure

from reactor.testing.double.engine.types import type_name
from reactor.testing.double.replies import CommandFailed, Doc, not_supported

_FIELD_OPERATORS = frozenset({"$getField", "$setField", "$unsetField"})
_REMOVE = "$$REMOVE"
_NO_BRANCH = "$switch could not find a matching branch for an input, and no default was specified."


def evaluate(expression: Any, root: Doc) -> Any:
    """The value of ``expression`` on the document ``root`` (KeyError when it is missing)."""
    if isinstance(expression, dict) and len(expression) == 1:
        ((name, arg),) = expression.items()
        if name in _FIELD_OPERATORS:
            return _field_operator(name, arg, root)
    if isinstance(expression, str) and expression.startswith(_REMOVE):
        raise KeyError(_REMOVE)
    check_switches(expression)
    try:
        return _parse_expression(expression, root, ignore_missing_keys=True)  # type: ignore[no-untyped-call]
    except OperationFailure as exc:
        if str(exc).startswith("Unrecognized expression"):
            raise not_supported(f"the expression {expression!r} ({exc})") from exc
        raise failure(exc) from exc
    except NotImplementedError as exc:
        raise not_supported(f"the expression {expression!r} ({exc})") from exc


def failure(exc: OperationFailure) -> CommandFailed:
    """MongoDB's error for one mongomock raised while evaluating an expression."""
    if str(exc).startswith("$switch could not find a matching branch"):
        return CommandFailed(40066, _NO_BRANCH)
    return CommandFailed(exc.code or 2, str(exc))


def check_switches(expression: Any) -> None:
    """Every ``$switch`` in ``expression`` shaped as MongoDB's parser requires (40060-40068)."""
    if isinstance(expression, list):
        for item in expression:
            check_switches(item)
    elif isinstance(expression, dict) and set(expression) != {"$literal"}:
        for name, arg in expression.items():
            if name == "$switch":
                _check_switch(arg)
            check_switches(arg)


def _check_switch(arg: Any) -> None:
    if not isinstance(arg, dict):
        raise CommandFailed(
            40060, f"$switch requires an object as an argument, found: {type_name(arg)}"
        )
    for name in arg:
        if name not in ("branches", "default"):
            raise CommandFailed(40067, f"$switch found an unknown argument: {name}")
    branches = arg.get("branches", [])
    if not isinstance(branches, list):
        raise CommandFailed(
            40061, f"$switch expected an array for 'branches', found: {type_name(branches)}"
        )
    for branch in branches:
        if not isinstance(branch, dict):
            raise CommandFailed(
                40062, f"$switch expected each branch to be an object, found: {type_name(branch)}"
            )
        for name in branch:
            if name not in ("case", "then"):
                raise CommandFailed(40063, f"$switch found an unknown argument to a branch: {name}")
        if "case" not in branch:
            raise CommandFailed(40064, "$switch requires each branch have a 'case' expression")
        if "then" not in branch:
            raise CommandFailed(40065, "$switch requires each branch have a 'then' expression.")
    if not branches:
        raise CommandFailed(40068, "$switch requires at least one branch.")


def _field_operator(name: str, arg: Any, root: Doc) -> Any:
    if name == "$getField" and (not isinstance(arg, dict) or set(arg) == {"$literal"}):
        arg = {"field": arg}  # the shorthand {$getField: <name>}
    if not isinstance(arg, dict):
        raise CommandFailed(4161100, f"{name} requires an object as an argument")
    allowed = {"field", "input"} | ({"value"} if name == "$setField" else set())
    unknown = set(arg) - allowed
    if unknown or "field" not in arg or (name != "$getField" and "input" not in arg):
        raise CommandFailed(4161101, f"{name} takes {sorted(allowed)}, got {sorted(arg)}")
    field = _field_name(name, arg["field"], root)
    source = _optional(arg.get("input", "$$CURRENT"), root)
    if name == "$getField":
        if not isinstance(source, dict) or field not in source:
            raise KeyError(field)
        return source[field]
    if source is None:
        return None
    if not isinstance(source, dict):
        raise CommandFailed(4161105, f"{name} requires 'input' to evaluate to an object")
    out = dict(source)
    if name == "$unsetField" or arg.get("value") == _REMOVE:
        out.pop(field, None)
        return out
    value = _optional(arg.get("value"), root)
    out[field] = value
    return out


def _field_name(name: str, spec: Any, root: Doc) -> str:
    """``field`` must be a constant string (``$literal`` for one that starts with ``$``)."""
    if isinstance(spec, str) and not spec.startswith("$"):
        return spec
    if isinstance(spec, dict) and set(spec) == {"$literal"} and isinstance(spec["$literal"], str):
        return str(spec["$literal"])
    raise CommandFailed(4161106, f"{name} requires 'field' to evaluate to a constant string")


def _optional(expression: Any, root: Doc) -> Any:
    try:
        return evaluate(expression, root)
    except KeyError:
        return None
