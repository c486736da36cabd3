"""BSON values as byte strings that compare in MongoDB's comparison order.

``encode(a) < encode(b)`` exactly when MongoDB orders ``a`` before ``b``, and the encodings are
equal exactly when MongoDB calls the values equal (``1 == 1.0 == Decimal128("1")``, ``NaN ==
NaN``, but ``true != 1``). This is the idea of MongoDB's own KeyString index format: every
comparison the engine makes (matching, sorting, ``$min``/``$max``, index bounds, unique keys)
becomes a comparison of ``bytes``, done in C.

Each encoding starts with the canonical type's rank byte (the BSON comparison order: MinKey <
null < numbers < strings < objects < arrays < binData < ObjectId < bool < date < timestamp <
regex < ... < MaxKey) and is prefix-free, so encodings concatenate into compound index keys, and
inverting every byte of one reverses its order (descending index fields).
"""

from __future__ import annotations

import datetime as dt
import math
import re
import struct
import uuid
from decimal import Decimal
from typing import Any

from bson import DBRef, Decimal128, MaxKey, MinKey, ObjectId, Regex, Timestamp
from bson.binary import Binary
from bson.code import Code
from bson.datetime_ms import DatetimeMS

RANK_MINKEY = 1
RANK_UNDEFINED = 2  # also the key of an empty array in an index, as in MongoDB
RANK_NULL = 5
RANK_NUMBER = 10
RANK_STRING = 15
RANK_OBJECT = 20
RANK_ARRAY = 25
RANK_BINARY = 30
RANK_OBJECTID = 35
RANK_BOOL = 40
RANK_DATE = 45
RANK_TIMESTAMP = 47
RANK_REGEX = 50
RANK_CODE = 60
RANK_CODE_WITH_SCOPE = 65
RANK_MAXKEY = 127

_DOUBLE = struct.Struct(">d")
_UINT64 = struct.Struct(">Q")
_EPOCH = dt.datetime(1970, 1, 1)
_FLAG_LETTERS: tuple[tuple[int, str], ...] = (
    (re.IGNORECASE, "i"),
    (re.LOCALE, "l"),
    (re.MULTILINE, "m"),
    (re.DOTALL, "s"),
    (re.UNICODE, "u"),
    (re.VERBOSE, "x"),
)
_INVERT = bytes(range(255, -1, -1))
NULL_KEY = bytes([RANK_NULL])
UNDEFINED_KEY = bytes([RANK_UNDEFINED])


def encode(value: Any) -> bytes:
    """The order-preserving encoding of one BSON value."""
    rank = rank_of(value)
    body: bytes = _BODIES[rank](value)
    return bytes([rank]) + body


def rank_of(value: Any) -> int:
    """The canonical type rank of ``value`` (values of one rank compare with each other)."""
    kind = type(value)
    rank = _RANKS.get(kind)
    if rank is not None:
        return rank
    for base, base_rank in _RANK_BASES:
        if isinstance(value, base):
            return base_rank
    raise TypeError(f"not a BSON value: {type(value).__name__}")


def compare(a: Any, b: Any) -> int:
    """-1, 0 or 1 as ``a`` sorts before, with or after ``b`` in BSON order."""
    ka, kb = encode(a), encode(b)
    return (ka > kb) - (ka < kb)


def invert(key: bytes) -> bytes:
    """``key`` with every byte inverted: the encoding of the same value in descending order."""
    return key.translate(_INVERT)


def successor(key: bytes) -> bytes | None:
    """The smallest byte string greater than every string that starts with ``key``."""
    stripped = key.rstrip(b"\xff")
    if not stripped:
        return None
    return stripped[:-1] + bytes([stripped[-1] + 1])


def _number(value: Any) -> bytes:
    if isinstance(value, Decimal128):
        value = value.to_decimal()
    approx = float(value)
    if math.isnan(approx):
        return bytes(16)
    approx = approx + 0.0  # -0.0 becomes 0.0
    residual = 0.0
    if not math.isinf(approx):
        exact = Decimal(value) if isinstance(value, Decimal) else value
        residual = float(exact - (Decimal(approx) if isinstance(exact, Decimal) else int(approx)))
    return _double(approx) + _double(residual + 0.0)


def _double(value: float) -> bytes:
    (bits,) = _UINT64.unpack(_DOUBLE.pack(value))
    bits = bits ^ 0xFFFFFFFFFFFFFFFF if bits >> 63 else bits | (1 << 63)
    return _UINT64.pack(bits)


def _string(value: str) -> bytes:
    return value.encode("utf-8", "surrogatepass").replace(b"\x00", b"\x00\xff") + b"\x00\x00"


def _object(value: Any) -> bytes:
    if isinstance(value, DBRef):
        value = value.as_doc()
    parts = [encode_field(key, item) for key, item in value.items()]
    return b"".join(parts) + b"\x00"


def encode_field(name: str, value: Any) -> bytes:
    """One field of an object: type first, then name, then value, as MongoDB compares them."""
    rank = rank_of(value)
    body: bytes = _BODIES[rank](value)
    return bytes([rank]) + _string(name) + body


def _array(value: Any) -> bytes:
    return b"".join(encode(item) for item in value) + b"\x00"


def _binary(value: Any) -> bytes:
    if isinstance(value, uuid.UUID):
        data, subtype = value.bytes, 4
    else:
        data, subtype = bytes(value), getattr(value, "subtype", 0)
    return len(data).to_bytes(4, "big") + bytes([subtype]) + data


def _date(value: Any) -> bytes:
    if isinstance(value, DatetimeMS):
        millis = int(value)
    else:
        naive = value.astimezone(dt.UTC).replace(tzinfo=None) if value.tzinfo else value
        delta = naive - _EPOCH
        millis = (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000
    return (millis + (1 << 63)).to_bytes(8, "big")


def _timestamp(value: Timestamp) -> bytes:
    return value.time.to_bytes(4, "big") + value.inc.to_bytes(4, "big")


def _regex(value: Any) -> bytes:
    flags = value.flags
    if isinstance(flags, int):
        flags = "".join(letter for flag, letter in _FLAG_LETTERS if flags & flag)
    return _string(value.pattern) + _string("".join(sorted(flags)))


def _code(value: Code) -> bytes:
    body = _string(str(value))
    return body if value.scope is None else body + _object(value.scope)


def _nothing(value: Any) -> bytes:
    return b""


_RANKS: dict[type, int] = {
    type(None): RANK_NULL,
    bool: RANK_BOOL,
    int: RANK_NUMBER,
    float: RANK_NUMBER,
    str: RANK_STRING,
    dict: RANK_OBJECT,
    list: RANK_ARRAY,
    bytes: RANK_BINARY,
    ObjectId: RANK_OBJECTID,
    dt.datetime: RANK_DATE,
    Timestamp: RANK_TIMESTAMP,
    MinKey: RANK_MINKEY,
    MaxKey: RANK_MAXKEY,
}
_RANK_BASES: tuple[tuple[type | tuple[type, ...], int], ...] = (
    (bool, RANK_BOOL),
    ((int, float, Decimal128, Decimal), RANK_NUMBER),
    (Code, RANK_CODE),  # Code is a str subclass: before str
    (str, RANK_STRING),
    ((dict, DBRef), RANK_OBJECT),
    ((list, tuple), RANK_ARRAY),
    ((bytes, Binary, uuid.UUID), RANK_BINARY),
    ((dt.datetime, DatetimeMS), RANK_DATE),
    ((Regex, re.Pattern), RANK_REGEX),
)
_BODIES: dict[int, Any] = {
    RANK_MINKEY: _nothing,
    RANK_UNDEFINED: _nothing,
    RANK_NULL: _nothing,
    RANK_NUMBER: _number,
    RANK_STRING: _string,
    RANK_OBJECT: _object,
    RANK_ARRAY: _array,
    RANK_BINARY: _binary,
    RANK_OBJECTID: lambda value: value.binary,
    RANK_BOOL: lambda value: b"\x01" if value else b"\x00",
    RANK_DATE: _date,
    RANK_TIMESTAMP: _timestamp,
    RANK_REGEX: _regex,
    RANK_CODE: _code,
    RANK_MAXKEY: _nothing,
}
