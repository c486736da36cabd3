"""The update operators, each applied to one path of a document copy.

Errors carry MongoDB's codes: 14 ``TypeMismatch`` for arithmetic on or with a non-number, 2
``BadValue`` for array operators on a non-array, 28 ``PathNotViable`` through a scalar. Since
they run on a copy, a failing operator leaves the stored document as it was.
"""

from __future__ import annotations

import datetime as dt
import operator
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from bson import Decimal128, Int64, Timestamp

from reactor.testing.double.engine import keystring as ks
from reactor.testing.double.engine import types
from reactor.testing.double.engine.fieldpath import child_of, parent, put, remove
from reactor.testing.double.engine.matcher import compile_filter, field_predicate, is_operator_doc
from reactor.testing.double.engine.paths import MISSING, deep_copy
from reactor.testing.double.engine.sorting import parse_sort, sort_key
from reactor.testing.double.replies import CommandFailed

_INT32 = range(-(2**31), 2**31)
_INT64 = range(-(2**63), 2**63)


@dataclass
class UpdateContext:
    doc_id: Any
    inserting: bool
    now: dt.datetime


Operator = Callable[[Any, tuple[str, ...], Any, UpdateContext], None]


def _set(doc: Any, parts: tuple[str, ...], arg: Any, ctx: UpdateContext) -> None:
    put(parent(doc, parts, create=True), parts[-1], deep_copy(arg))


def _set_on_insert(doc: Any, parts: tuple[str, ...], arg: Any, ctx: UpdateContext) -> None:
    if ctx.inserting:
        _set(doc, parts, arg, ctx)


def _unset(doc: Any, parts: tuple[str, ...], arg: Any, ctx: UpdateContext) -> None:
    node = parent(doc, parts, create=False)
    if node is not None:
        remove(node, parts[-1])


def _arithmetic(name: str, op: Callable[[Any, Any], Any]) -> Operator:
    verb = "increment" if name == "$inc" else "multiply"

    def apply(doc: Any, parts: tuple[str, ...], arg: Any, ctx: UpdateContext) -> None:
        path = ".".join(parts)
        if not types.is_number(arg):
            raise CommandFailed(14, f"Cannot {verb} with non-numeric argument: {{{path}: {arg!r}}}")
        node = parent(doc, parts, create=True)
        current = child_of(node, parts[-1])
        if current is MISSING:
            put(node, parts[-1], arg if name == "$inc" else _arith(arg, 0, operator.mul))
            return
        if not types.is_number(current):
            raise CommandFailed(
                14,
                f"Cannot apply {name} to a value of non-numeric type. {{_id: {ctx.doc_id!r}}} "
                f"has the field '{parts[-1]}' of non-numeric type {types.type_name(current)}",
            )
        put(node, parts[-1], _arith(current, arg, op))

    return apply


def _arith(a: Any, b: Any, op: Callable[[Any, Any], Any]) -> Any:
    if isinstance(a, Decimal128) or isinstance(b, Decimal128):
        return Decimal128(op(_decimal(a), _decimal(b)))
    if isinstance(a, float) or isinstance(b, float):
        return float(op(float(a), float(b)))
    result = op(int(a), int(b))
    if result not in _INT64:
        raise CommandFailed(2, f"Failed to apply arithmetic: {a} and {b} overflow a 64-bit integer")
    if isinstance(a, Int64) or isinstance(b, Int64) or result not in _INT32:
        return Int64(result)
    return int(result)


def _decimal(value: Any) -> Decimal:
    return value.to_decimal() if isinstance(value, Decimal128) else Decimal(value)


def _extreme(wanted: int) -> Operator:
    def apply(doc: Any, parts: tuple[str, ...], arg: Any, ctx: UpdateContext) -> None:
        node = parent(doc, parts, create=True)
        current = child_of(node, parts[-1])
        if current is MISSING or ks.compare(arg, current) == wanted:
            put(node, parts[-1], deep_copy(arg))

    return apply


def _current_date(doc: Any, parts: tuple[str, ...], arg: Any, ctx: UpdateContext) -> None:
    kind = arg.get("$type") if isinstance(arg, dict) else ("date" if arg is True else None)
    if isinstance(arg, dict) and set(arg) != {"$type"}:
        kind = None
    if kind == "date" or arg is False:
        value: Any = ctx.now
    elif kind == "timestamp":
        value = Timestamp(int(ctx.now.replace(tzinfo=dt.UTC).timestamp()), 1)
    else:
        raise CommandFailed(
            2,
            f"{arg!r} is not valid type for $currentDate. Please use a boolean ('true') or a "
            "$type expression ({$type: 'timestamp'/'date'}).",
        )
    _set(doc, parts, value, ctx)


def _array_at(
    doc: Any, parts: tuple[str, ...], name: str, ctx: UpdateContext, create: bool
) -> list[Any] | None:
    node = parent(doc, parts, create=create)
    current = child_of(node, parts[-1]) if node is not None else MISSING
    if current is MISSING:
        if not create:
            return None
        current = []
        put(node, parts[-1], current)
    if not isinstance(current, list):
        raise CommandFailed(
            2 if name != "$pop" else 14,
            f"The field '{'.'.join(parts)}' must be an array but is of type "
            f"{types.type_name(current)} in document {{_id: {ctx.doc_id!r}}}",
        )
    return current


def _push(doc: Any, parts: tuple[str, ...], arg: Any, ctx: UpdateContext) -> None:
    items, position, slice_, order = [arg], None, None, None
    if isinstance(arg, dict) and "$each" in arg:
        unknown = set(arg) - {"$each", "$slice", "$sort", "$position"}
        if unknown:
            raise CommandFailed(2, f"Unrecognized clause in $push: {sorted(unknown)[0]}")
        if not isinstance(arg["$each"], list):
            raise CommandFailed(2, "The argument to $each in $push must be an array")
        items, position = arg["$each"], arg.get("$position")
        slice_, order = arg.get("$slice"), arg.get("$sort")
    array = _array_at(doc, parts, "$push", ctx, create=True)
    assert array is not None
    at = len(array) if position is None else _position(position, len(array))
    array[at:at] = [deep_copy(item) for item in items]
    if order is not None:
        array[:] = _sorted_elements(array, order)
    if slice_ is not None:
        if not isinstance(slice_, int) or isinstance(slice_, bool):
            raise CommandFailed(2, "The value for $slice must be an integer")
        array[:] = array[slice_:] if slice_ < 0 else array[:slice_]


def _position(position: Any, length: int) -> int:
    if not isinstance(position, int) or isinstance(position, bool):
        raise CommandFailed(2, "The value for $position must be an integer")
    return max(0, length + position) if position < 0 else min(position, length)


def _sorted_elements(array: list[Any], order: Any) -> list[Any]:
    if isinstance(order, dict):
        key = sort_key(parse_sort(order))
        return sorted(array, key=lambda item: key(item if isinstance(item, dict) else {}))
    if order not in (1, -1):
        raise CommandFailed(2, "The $sort is invalid: use 1/-1 to sort the whole element")
    return sorted(array, key=ks.encode, reverse=order == -1)


def _add_to_set(doc: Any, parts: tuple[str, ...], arg: Any, ctx: UpdateContext) -> None:
    items = [arg]
    if isinstance(arg, dict) and "$each" in arg:
        if not isinstance(arg["$each"], list):
            raise CommandFailed(2, "The argument to $each in $addToSet must be an array")
        items = arg["$each"]
    array = _array_at(doc, parts, "$addToSet", ctx, create=True)
    assert array is not None
    present = {ks.encode(item) for item in array}
    for item in items:
        key = ks.encode(item)
        if key not in present:
            present.add(key)
            array.append(deep_copy(item))


def _pop(doc: Any, parts: tuple[str, ...], arg: Any, ctx: UpdateContext) -> None:
    if arg not in (1, -1) or isinstance(arg, bool):
        raise CommandFailed(2, "$pop expects 1 or -1")
    array = _array_at(doc, parts, "$pop", ctx, create=False)
    if array:
        array.pop(0 if arg == -1 else -1)


def _pull(doc: Any, parts: tuple[str, ...], arg: Any, ctx: UpdateContext) -> None:
    if is_operator_doc(arg) and not set(arg) & {"$and", "$or", "$nor"}:
        test = field_predicate("v", arg)
        removes = lambda item: test({"v": item})  # noqa: E731
    elif isinstance(arg, dict):
        query = compile_filter(arg)
        removes = lambda item: isinstance(item, dict) and query(item)  # noqa: E731
    else:
        key = ks.encode(arg)
        removes = lambda item: ks.encode(item) == key  # noqa: E731
    _filter_array(doc, parts, removes, "$pull", ctx)


def _pull_all(doc: Any, parts: tuple[str, ...], arg: Any, ctx: UpdateContext) -> None:
    if not isinstance(arg, list):
        raise CommandFailed(2, "$pullAll requires an array argument")
    keys = {ks.encode(item) for item in arg}
    _filter_array(doc, parts, lambda item: ks.encode(item) in keys, "$pullAll", ctx)


def _filter_array(
    doc: Any, parts: tuple[str, ...], removes: Callable[[Any], bool], name: str, ctx: UpdateContext
) -> None:
    node = parent(doc, parts, create=False)
    current = child_of(node, parts[-1]) if node is not None else MISSING
    if current is MISSING:
        return
    if not isinstance(current, list):
        raise CommandFailed(2, f"Cannot apply {name} to a non-array value")
    current[:] = [item for item in current if not removes(item)]


def _bit(doc: Any, parts: tuple[str, ...], arg: Any, ctx: UpdateContext) -> None:
    if not isinstance(arg, dict) or not arg or set(arg) - {"and", "or", "xor"}:
        raise CommandFailed(2, "The $bit modifier only supports 'and', 'or', and 'xor'")
    node = parent(doc, parts, create=True)
    current = child_of(node, parts[-1])
    value = 0 if current is MISSING else current
    if not isinstance(value, int) or isinstance(value, bool):
        raise CommandFailed(
            14,
            f"Cannot apply $bit to a value of non-integral type. {{_id: {ctx.doc_id!r}}} has "
            f"the field '{parts[-1]}' of non-integer type {types.type_name(value)}",
        )
    ops = {"and": operator.and_, "or": operator.or_, "xor": operator.xor}
    for name, mask in arg.items():
        if not isinstance(mask, int) or isinstance(mask, bool):
            raise CommandFailed(2, "The $bit modifier field must be an Integer(32/64 bit)")
        value = _arith(value, mask, ops[name])
    put(node, parts[-1], value)


OPERATORS: dict[str, Operator] = {
    "$set": _set,
    "$setOnInsert": _set_on_insert,
    "$unset": _unset,
    "$inc": _arithmetic("$inc", operator.add),
    "$mul": _arithmetic("$mul", operator.mul),
    "$min": _extreme(-1),
    "$max": _extreme(1),
    "$currentDate": _current_date,
    "$push": _push,
    "$addToSet": _add_to_set,
    "$pop": _pop,
    "$pull": _pull,
    "$pullAll": _pull_all,
    "$bit": _bit,
}
