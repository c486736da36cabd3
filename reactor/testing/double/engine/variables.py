"""Aggregation variables (``$$name``): an expression that uses one nothing defines fails to parse.

MongoDB checks variables when it parses an expression, before it reads a document: ``$$id2``
with no ``let`` defining ``id2`` fails with 17276 ``Use of undefined variable: id2`` even on an
empty collection. Defined are the system variables (``$$ROOT``, ``$$CURRENT``, ``$$NOW``, ...)
and the names an expression binds itself: ``$let``'s ``vars``, ``$map``'s and ``$filter``'s
``as`` (``this`` by default), ``$reduce``'s ``value`` and ``this``. A name bound anywhere in the
expression counts as defined everywhere in it (a simplification: MongoDB scopes it to the
operator's ``in``). The double has no command-level ``let`` (refused with 238), so nothing else
defines one.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

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
