"""Aggregation variables (``$$name``): an expression that uses one nothing defines fails to parse.

MongoDB checks variables when it parses an expression, before it reads a document: ``$$id2``
with no ``let`` defining ``id2`` fails with 17276 ``Use of undefined variable: id2`` even on an
empty collection. Defined are the system variables (``$$ROOT``, ``$$CURRENT``, ``$$NOW``, ...)
and the names an expression binds itself: ``$let``'s ``vars``, ``$map``'s and ``$filter``'s
``as`` (``this`` by default), ``$reduce``'s ``value`` and ``this``. A name bound anywhere in the
expression counts as defined everywhere in it (a simplification: MongoDB scopes it to the
operator's ``in``). The double has no command-level ``let`` (refused with 238); ``$merge``'s
``let`` (and ``$$new``) are bound as constants into its ``whenMatched`` pipeline with
:func:`bind` before the pipeline runs, as MongoDB evaluates them once per source document.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from reactor.testing.double.engine.expressions import evaluate
from reactor.testing.double.engine.paths import MISSING
from reactor.testing.double.replies import CommandFailed

SYSTEM_VARIABLES = frozenset(
    {"ROOT", "CURRENT", "REMOVE", "NOW", "CLUSTER_TIME", "DESCEND", "PRUNE", "KEEP"}
    | {"SEARCH_META", "USER_ROLES"}
)


def check_defined(expression: Any) -> None:
    """Raise 17276 if ``expression`` uses a variable that neither the system nor it defines."""
    bound = set(SYSTEM_VARIABLES) | set(_bound(expression))
    for name in _used(expression):
        if name not in bound:
            raise CommandFailed(17276, f"Use of undefined variable: {name}")


def _used(expression: Any) -> Iterator[str]:
    if isinstance(expression, str) and expression.startswith("$$"):
        yield expression[2:].split(".", 1)[0]
    elif isinstance(expression, dict):
        if set(expression) == {"$literal"}:
            return
        for value in expression.values():
            yield from _used(value)
    elif isinstance(expression, list):
        for value in expression:
            yield from _used(value)


def _bound(expression: Any) -> Iterator[str]:
    if isinstance(expression, dict):
        for name, arg in expression.items():
            if isinstance(arg, dict):
                yield from _bound_by(name, arg)
            yield from _bound(arg)
    elif isinstance(expression, list):
        for value in expression:
            yield from _bound(value)


def _bound_by(operator: str, arg: dict[str, Any]) -> Iterator[str]:
    if operator == "$let" and isinstance(arg.get("vars"), dict):
        yield from arg["vars"]
    elif operator in ("$map", "$filter"):
        yield str(arg.get("as", "this"))
    elif operator == "$reduce":
        yield from ("value", "this")


def check_variable_name(name: str) -> None:
    """MongoDB's rules for a variable a user defines (``let``): 16866, 16867, 16868."""
    if name == "CURRENT":
        return
    if not name:
        raise CommandFailed(16866, "empty variable names are not allowed")
    if not (name[0].islower() and name[0].isascii()) and name[0].isascii():
        raise CommandFailed(
            16867, f"'{name}' starts with an invalid character for a user variable name"
        )
    for char in name[1:]:
        if char.isascii() and not (char.isalnum() or char == "_"):
            raise CommandFailed(
                16868, f"'{name}' contains an invalid character for a variable name: '{char}'"
            )


def bind(expression: Any, values: dict[str, Any]) -> Any:
    """``expression`` with each ``$$name`` (or ``$$name.path``) of ``values`` made a constant.

    Variables bound inside the expression (``$let`` ``vars``, ``$map``/``$filter`` ``as``,
    ``$reduce``'s ``value`` and ``this``) shadow ``values`` where they are in scope; ``$literal``
    is left alone. A path the value lacks becomes ``$$REMOVE``, so it reads as missing.
    """
    if isinstance(expression, str) and expression.startswith("$$"):
        name, _, path = expression[2:].partition(".")
        return _constant(values[name], path) if name in values else expression
    if isinstance(expression, list):
        return [bind(item, values) for item in expression]
    if not isinstance(expression, dict) or set(expression) == {"$literal"}:
        return expression
    return {key: _bind_argument(key, arg, values) for key, arg in expression.items()}


def _bind_argument(operator: str, arg: Any, values: dict[str, Any]) -> Any:
    scoped = _SCOPED_PARTS.get(operator)
    if scoped is None or not isinstance(arg, dict):
        return bind(arg, values)
    inner = {k: v for k, v in values.items() if k not in _bound_by_operator(operator, arg)}
    return {key: bind(sub, inner if key in scoped else values) for key, sub in arg.items()}


_SCOPED_PARTS = {"$let": {"in"}, "$map": {"in"}, "$filter": {"cond"}, "$reduce": {"in"}}


def _bound_by_operator(operator: str, arg: dict[str, Any]) -> set[str]:
    if operator == "$let":
        return set(arg.get("vars") or {})
    if operator == "$reduce":
        return {"value", "this"}
    return {str(arg.get("as", "this"))}


def _constant(value: Any, path: str) -> Any:
    """``value`` (or what ``path`` reaches in it, through arrays too) as a ``$literal``."""
    if value is MISSING:
        return "$$REMOVE"
    if path:
        try:
            value = evaluate(f"$value.{path}", {"value": value})
        except KeyError:
            return "$$REMOVE"
    return {"$literal": value}
