"""Query filters compiled into predicates, with MongoDB's matching rules.

- A path that reaches an array matches when the array itself or one of its elements matches
  (``{"tags": "x"}`` matches ``{"tags": ["x", "y"]}``); ``$size``, ``$all`` on whole arrays and
  ``$elemMatch`` look at the array itself.
- ``null`` matches a missing field; ``$ne``/``$nin`` are the negation over the whole field.
- Comparisons bracket types: ``{"$gt": 5}`` only matches numbers, ``{"$gt": now}`` only dates,
  and numbers compare by value across int, long, double and decimal (``1 == 1.0``), never
  with booleans. Equality and order come from :mod:`keystring`.

``$expr`` is evaluated by mongomock's aggregation expression parser; ``$where``, ``$text``,
``$jsonSchema``, geo and bitwise operators answer 238.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mongomock.aggregate import _parse_expression
from pymongo.errors import OperationFailure

from reactor.testing.double.engine import types, variables
from reactor.testing.double.engine.keystring import encode, rank_of
from reactor.testing.double.engine.paths import MISSING, split, values_at
from reactor.testing.double.replies import CommandFailed, Doc, not_supported

Predicate = Callable[[Any], bool]
ValueTest = Callable[[Any], bool]

_UNSUPPORTED = frozenset(
    {"$where", "$text", "$jsonSchema", "$geoWithin", "$geoIntersects", "$near", "$nearSphere"}
    | {"$bitsAllSet", "$bitsAllClear", "$bitsAnySet", "$bitsAnyClear", "$within", "$box"}
)


def compile_filter(spec: Any) -> Predicate:
    """A predicate over documents for the query filter ``spec`` (raises CommandFailed if bad)."""
    if not isinstance(spec, dict):
        raise CommandFailed(2, "the match filter must be an expression in an object")
    tests = [_clause(key, value) for key, value in spec.items() if key != "$comment"]
    if not tests:
        return lambda doc: True
    if len(tests) == 1:
        return tests[0]
    return lambda doc: all(test(doc) for test in tests)


def is_operator_doc(value: Any) -> bool:
    return isinstance(value, dict) and bool(value) and str(next(iter(value))).startswith("$")


def _clause(key: str, value: Any) -> Predicate:
    if key in {"$and", "$or", "$nor"}:
        if not isinstance(value, list) or not value:
            raise CommandFailed(2, f"{key} must be a nonempty array")
        subs = [compile_filter(item) for item in value]
        if key == "$and":
            return lambda doc: all(sub(doc) for sub in subs)
        if key == "$or":
            return lambda doc: any(sub(doc) for sub in subs)
        return lambda doc: not any(sub(doc) for sub in subs)
    if key == "$expr":
        return _expr(value)
    if key in _UNSUPPORTED:
        raise not_supported(f"the query operator {key}")
    if key.startswith("$"):
        raise CommandFailed(2, f"unknown top level operator: {key}")
    return field_predicate(key, value)


def field_predicate(path: str, cond: Any) -> Predicate:
    """The predicate for ``{path: cond}``."""
    parts = split(path)
    if not is_operator_doc(cond):
        return _expanded(parts, _equals(cond, regex=True))
    found = [_operator(parts, name, arg, cond) for name, arg in cond.items()]
    tests = [test for test in found if test is not None]
    if len(tests) == 1:
        return tests[0]
    return lambda doc: all(test(doc) for test in tests)


def _expanded(parts: tuple[str, ...], test: ValueTest) -> Predicate:
    """Holds when ``test`` holds for a value at the path or for an element of an array there."""

    def predicate(doc: Any) -> bool:
        for value in values_at(doc, parts):
            if test(value):
                return True
            if type(value) is list and any(test(item) for item in value):
                return True
        return False

    return predicate


def _operator(parts: tuple[str, ...], name: str, arg: Any, cond: Doc) -> Predicate | None:
    if name in _VALUE_OPERATORS:
        return _expanded(parts, _VALUE_OPERATORS[name](arg))
    if name == "$ne":
        eq = _expanded(parts, _equals(arg, regex=False))
        return lambda doc: not eq(doc)
    if name == "$nin":
        member = _expanded(parts, _in(arg))
        return lambda doc: not member(doc)
    if name == "$exists":
        wanted = bool(arg)
        return lambda doc: any(v is not MISSING for v in values_at(doc, parts)) == wanted
    if name == "$not":
        return _not(parts, arg)
    if name == "$size":
        return _size(parts, arg)
    if name == "$all":
        return _all(parts, arg)
    if name == "$elemMatch":
        return _elem_match(parts, arg)
    if name == "$options":
        if "$regex" not in cond:
            raise CommandFailed(2, "$options needs a $regex")
        return None
    if name == "$regex":
        return _expanded(parts, _regex(types.regex_of(arg, cond.get("$options", ""))))
    if name in _UNSUPPORTED:
        raise not_supported(f"the query operator {name}")
    raise CommandFailed(2, f"unknown operator: {name}")


def _equals(x: Any, *, regex: bool) -> ValueTest:
    if regex and types.is_regex(x):
        return _regex(types.regex_of(x, ""))
    if x is None:
        return lambda v: v is None or v is MISSING
    if type(x) is str:
        return lambda v: type(v) is str and v == x
    key = encode(x)
    return lambda v: v is not MISSING and encode(v) == key


def _in(arg: Any) -> ValueTest:
    if not isinstance(arg, list):
        raise CommandFailed(2, "$in needs an array")
    if any(is_operator_doc(item) for item in arg):
        raise CommandFailed(2, "cannot nest $ under $in")
    tests = [_equals(item, regex=True) for item in arg if types.is_regex(item)]
    with_null = any(item is None for item in arg)
    keys = {encode(item) for item in arg if item is not None and not types.is_regex(item)}

    def member(v: Any) -> bool:
        if v is MISSING or v is None:
            return with_null
        return encode(v) in keys or any(test(v) for test in tests)

    return member


def _comparison(
    op: Callable[[bytes, bytes], bool], accepts_null: bool
) -> Callable[[Any], ValueTest]:
    def build(x: Any) -> ValueTest:
        if x is None:
            return (lambda v: v is None or v is MISSING) if accepts_null else (lambda v: False)
        rank, key = rank_of(x), encode(x)
        return lambda v: v is not MISSING and rank_of(v) == rank and op(encode(v), key)

    return build


def _type(arg: Any) -> ValueTest:
    wanted = types.type_set(arg)
    return lambda v: v is not MISSING and types.type_code(v) in wanted


def _mod(arg: Any) -> ValueTest:
    if not isinstance(arg, list) or len(arg) != 2:
        raise CommandFailed(2, "malformed mod, needs to be an array of two numbers")
    if not all(types.is_number(item) for item in arg):
        raise CommandFailed(2, "malformed mod, divisor and remainder must be numbers")
    divisor, remainder = int(arg[0]), int(arg[1])
    if divisor == 0:
        raise CommandFailed(2, "divisor cannot be 0")

    def test(v: Any) -> bool:
        if not types.is_number(v) or v != v:
            return False
        value = int(v)
        return value - divisor * int(value / divisor) == remainder

    return test


def _regex(pattern: Any) -> ValueTest:
    return lambda v: type(v) is str and pattern.search(v) is not None


def _not(parts: tuple[str, ...], arg: Any) -> Predicate:
    if types.is_regex(arg):
        inner = _expanded(parts, _regex(types.regex_of(arg, "")))
    elif is_operator_doc(arg):
        inner = field_predicate(".".join(parts), arg)
    else:
        raise CommandFailed(2, "$not needs a regex or a document")
    return lambda doc: not inner(doc)


def _size(parts: tuple[str, ...], arg: Any) -> Predicate:
    if not types.is_number(arg) or int(arg) != arg or arg < 0:
        raise CommandFailed(2, "$size needs a non-negative whole number")
    size = int(arg)
    return lambda doc: any(type(v) is list and len(v) == size for v in values_at(doc, parts))


def _all(parts: tuple[str, ...], arg: Any) -> Predicate:
    if not isinstance(arg, list):
        raise CommandFailed(2, "$all needs an array")
    path = ".".join(parts)
    tests = [
        field_predicate(path, item)
        if is_operator_doc(item)
        else _expanded(parts, _equals(item, regex=True))
        for item in arg
    ]
    return lambda doc: bool(tests) and all(test(doc) for test in tests)


def _elem_match(parts: tuple[str, ...], arg: Any) -> Predicate:
    if not isinstance(arg, dict):
        raise CommandFailed(2, "$elemMatch needs an Object")
    if is_operator_doc(arg) and not set(arg) & {"$and", "$or", "$nor", "$expr"}:
        value_test = field_predicate("v", arg)
        element: Predicate = lambda item: value_test({"v": item})  # noqa: E731
    else:
        query = compile_filter(arg)
        element = lambda item: isinstance(item, dict) and query(item)  # noqa: E731
    return lambda doc: any(
        type(v) is list and any(element(item) for item in v) for v in values_at(doc, parts)
    )


def _expr(expression: Any) -> Predicate:
    variables.check_defined(expression)

    def predicate(doc: Any) -> bool:
        try:
            value = _parse_expression(expression, doc, ignore_missing_keys=True)  # type: ignore[no-untyped-call]
        except OperationFailure as exc:
            raise CommandFailed(exc.code or 2, str(exc)) from exc
        except (KeyError, TypeError, ValueError, NotImplementedError, AttributeError) as exc:
            raise not_supported(f"this $expr ({type(exc).__name__}: {exc})") from exc
        return types.truthy(value)

    return predicate


_VALUE_OPERATORS: dict[str, Callable[[Any], ValueTest]] = {
    "$eq": lambda arg: _equals(arg, regex=False),
    "$in": _in,
    "$gt": _comparison(lambda a, b: a > b, accepts_null=False),
    "$gte": _comparison(lambda a, b: a >= b, accepts_null=True),
    "$lt": _comparison(lambda a, b: a < b, accepts_null=False),
    "$lte": _comparison(lambda a, b: a <= b, accepts_null=True),
    "$type": _type,
    "$mod": _mod,
}
