"""Interim mongomock fixes the reactor's own queries need (superseded by the double's storage work).

- ``$type`` with a list of type names matches any of them (MongoDB 3.6+); unknown-to-mongomock
  type names simply do not match;
- ``$max`` and ``$min`` updates compare across types in BSON order instead of raising
  (Decimal128 compares as a number);
- ``$inc`` on a non-number fails with code 14 ``TypeMismatch``, as on MongoDB.
"""

from __future__ import annotations

import operator
from typing import Any

from bson.decimal128 import Decimal128
from mongomock import collection as mm_collection
from mongomock import filtering
from pymongo.errors import OperationFailure

_NOTHING = object()


def _type_op(doc_val: Any, search_val: Any, in_array: bool = False) -> bool:
    names = search_val if isinstance(search_val, list | tuple) else [search_val]
    for name in names:
        test = filtering.TYPE_MAP.get(name)
        if name not in filtering.TYPE_MAP:
            raise ValueError(f"{name!r} is not a valid $type")
        if test is not None and test(doc_val):
            return True
    if isinstance(doc_val, list | tuple) and not in_array:
        return any(_type_op(value, search_val, in_array=True) for value in doc_val)
    return False


def _number(value: Any) -> Any:
    return value.to_decimal() if isinstance(value, Decimal128) else value


def _bounded_updater(keep_new: Any) -> Any:
    def updater(doc: Any, field_name: str, value: Any) -> None:
        if not isinstance(doc, dict):
            return
        held = doc.get(field_name, _NOTHING)
        if held is _NOTHING or filtering.bson_compare(keep_new, _number(value), _number(held)):  # type: ignore[no-untyped-call]
            doc[field_name] = value

    return updater


_original_inc = mm_collection._updaters["$inc"]


def _inc_updater(doc: Any, field_name: str, value: Any) -> None:
    if isinstance(doc, dict) and field_name in doc:
        held = doc[field_name]
        if isinstance(held, bool) or not isinstance(held, int | float | Decimal128):
            raise OperationFailure(
                f"Cannot apply $inc to a value of non-numeric type. {{_id: ...}} has the field "
                f"'{field_name}' of non-numeric type {type(held).__name__}",
                code=14,
            )
    _original_inc(doc, field_name, value)  # type: ignore[no-untyped-call]


def install() -> None:
    """Patch mongomock in this process (idempotent)."""
    filtering._type_op = _type_op
    filtering._filterer_inst._operator_map["$type"] = _type_op
    for name, keep_new in (("$max", operator.gt), ("$min", operator.lt)):
        mm_collection._updaters[name] = _bounded_updater(keep_new)
    mm_collection._updaters["$inc"] = _inc_updater
