"""BSON type names and numbers for ``$type``, and small type tests the engine shares."""

from __future__ import annotations

import datetime as dt
import re
import uuid
from decimal import Decimal
from typing import Any

from bson import DBRef, Decimal128, Int64, MaxKey, MinKey, ObjectId, Regex, Timestamp
from bson.binary import Binary
from bson.code import Code
from bson.datetime_ms import DatetimeMS

from reactor.testing.double.replies import CommandFailed

TYPE_CODES: dict[str, int] = {
    "double": 1,
    "string": 2,
    "object": 3,
    "array": 4,
    "binData": 5,
    "undefined": 6,
    "objectId": 7,
    "bool": 8,
    "date": 9,
    "null": 10,
    "regex": 11,
    "dbPointer": 12,
    "javascript": 13,
    "symbol": 14,
    "javascriptWithScope": 15,
    "int": 16,
    "timestamp": 17,
    "long": 18,
    "decimal": 19,
    "minKey": -1,
    "maxKey": 127,
}
TYPE_NAMES = {code: name for name, code in TYPE_CODES.items()}
NUMBER_CODES = frozenset({1, 16, 18, 19})
_INT32 = range(-(2**31), 2**31)
_RE_FLAGS = {"i": re.IGNORECASE, "m": re.MULTILINE, "s": re.DOTALL, "x": re.VERBOSE}


def type_code(value: Any) -> int:
    """The BSON type number of ``value`` as MongoDB would store it."""
    if value is None:
        return 10
    if isinstance(value, bool):
        return 8
    if isinstance(value, Int64):
        return 18
    if isinstance(value, int):
        return 16 if value in _INT32 else 18
    if isinstance(value, float):
        return 1
    if isinstance(value, Decimal128 | Decimal):
        return 19
    if isinstance(value, Code):
        return 13 if value.scope is None else 15
    if isinstance(value, str):
        return 2
    if isinstance(value, dict | DBRef):
        return 3
    if isinstance(value, list | tuple):
        return 4
    return _other_code(value)


def _other_code(value: Any) -> int:
    for kind, code in _OTHER_CODES:
        if isinstance(value, kind):
            return code
    raise TypeError(f"not a BSON value: {type(value).__name__}")


_OTHER_CODES: tuple[tuple[Any, int], ...] = (
    ((bytes, Binary, uuid.UUID), 5),
    (ObjectId, 7),
    ((dt.datetime, DatetimeMS), 9),
    ((Regex, re.Pattern), 11),
    (Timestamp, 17),
    (MinKey, -1),
    (MaxKey, 127),
)


def type_set(arg: Any) -> frozenset[int]:
    """The type numbers a ``$type`` argument (a name, a number, ``"number"`` or a list) means."""
    items = arg if isinstance(arg, list) else [arg]
    if not items:
        raise CommandFailed(2, "$type must match at least one type")
    codes: set[int] = set()
    for item in items:
        if item == "number":
            codes |= NUMBER_CODES
        elif isinstance(item, str) and item in TYPE_CODES:
            codes.add(TYPE_CODES[item])
        elif is_number(item) and int(item) == item and int(item) in TYPE_NAMES:
            codes.add(int(item))
        else:
            raise CommandFailed(2, f"Unknown type name alias: {item}")
    return frozenset(codes)


def type_name(value: Any) -> str:
    return TYPE_NAMES[type_code(value)]


def is_number(value: Any) -> bool:
    return isinstance(value, int | float | Decimal128) and not isinstance(value, bool)


def is_regex(value: Any) -> bool:
    return isinstance(value, Regex | re.Pattern)


def regex_of(value: Any, options: Any) -> re.Pattern[str]:
    """A compiled Python pattern for a ``$regex`` value (string, Regex or pattern) and options."""
    if not isinstance(options, str):
        raise CommandFailed(2, "$options has to be a string")
    flags = 0
    for letter in options:
        flags |= _RE_FLAGS.get(letter, 0)
    try:
        if isinstance(value, re.Pattern):
            return re.compile(value.pattern, value.flags | flags)
        if isinstance(value, Regex):
            compiled: re.Pattern[str] = value.try_compile()
            return re.compile(compiled.pattern, compiled.flags | flags)
        if isinstance(value, str):
            return re.compile(value, flags)
    except re.error as exc:
        raise CommandFailed(51091, f"Regular expression is invalid: {exc}") from exc
    raise CommandFailed(2, "$regex has to be a string")


def truthy(value: Any) -> bool:
    """Truth as aggregation expressions see it: only false, null, 0 and missing are false."""
    if value is None or value is False:
        return False
    if is_number(value):
        return bool(float(value.to_decimal() if isinstance(value, Decimal128) else value))
    return True
