"""References inside a step's ``args`` and ``for_each`` and the workflow's ``output`` (pure).

A reference is a document with exactly one of these keys:

- ``{"$result": "split"}``: the result of step ``split``. For a ``for_each`` step it is the
  list of its elements' results in element order (a batched step's lists joined into one).
- ``{"$result": "split.pages"}``: a path into it (field names, list indices as digits). On a
  ``for_each`` step the path applies to each element: ``{"$result": "ocr.text"}`` is the list
  of every page's ``text``.
- ``{"$item": ""}``: in a ``for_each`` step's args, the job's element; ``{"$item": "field"}``
  one of its fields. In a batched step (``batch: N``) each is the list of the job's elements
  (or of their fields), in element order.
- ``{"$param": "name"}``: a template parameter, replaced when the template is run.
- ``{"$literal": value}``: ``value`` as it is, never read as a reference.

Referenced values are copied into the step job's ``args`` when the job is created, so a job is
complete in itself and re-running it reads nothing again.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

from reactor.errors import InvalidWorkflow, StepInputFailed

RESULT, ITEM, PARAM, LITERAL = "$result", "$item", "$param", "$literal"
KEYS = frozenset({RESULT, ITEM, PARAM, LITERAL})
MISSING: Any = object()

# What a step's value looks like to a reference: the value, and whether it is a list of
# elements (a for_each step) to which a path applies element by element.
StepValue = tuple[Any, bool]


def as_reference(value: Any) -> tuple[str, Any] | None:
    """``(key, argument)`` when ``value`` is a reference, else ``None``."""
    if isinstance(value, Mapping) and len(value) == 1:
        ((key, argument),) = value.items()
        if key in KEYS:
            return str(key), argument
    return None


def walk(value: Any) -> Iterator[tuple[str, Any]]:
    """Every reference in ``value`` (not inside ``$literal``), as ``(key, argument)``."""
    found = as_reference(value)
    if found is not None:
        if found[0] != LITERAL:
            yield found
        return
    if isinstance(value, Mapping):
        for item in value.values():
            yield from walk(item)
    elif isinstance(value, list):
        for item in value:
            yield from walk(item)


def split_path(text: Any) -> tuple[str, tuple[str, ...]]:
    """``"split.pages"`` -> ``("split", ("pages",))``; :class:`InvalidWorkflow` if malformed."""
    if not isinstance(text, str) or not text or any(not part for part in text.split(".")):
        raise InvalidWorkflow(f"{{'$result': {text!r}}}: name a step, optionally .field.field")
    step, *path = text.split(".")
    return step, tuple(path)


def item_path(text: Any) -> tuple[str, ...]:
    """``""`` -> ``()``, ``"a.b"`` -> ``("a", "b")``; :class:`InvalidWorkflow` if malformed."""
    if text == "":
        return ()
    if not isinstance(text, str) or any(not part for part in text.split(".")):
        raise InvalidWorkflow(f'{{\'$item\': {text!r}}}: use "" or a field path such as "a.b"')
    return tuple(text.split("."))


def lookup(value: Any, path: tuple[str, ...], where: str) -> Any:
    """``value`` followed along ``path``; :class:`StepInputFailed` naming ``where`` if absent."""
    for depth, part in enumerate(path):
        if isinstance(value, Mapping) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            reached = ".".join(path[:depth]) or "the value"
            kind = type(value).__name__
            raise StepInputFailed(f"{where}: {reached} ({kind}) has no {part!r}")
    return value


def resolve(
    value: Any, *, result: Callable[[str], StepValue], item: Any = MISSING, batched: bool = False
) -> Any:
    """``value`` with every reference replaced (``$param`` must be gone already).

    ``result(step)`` gives a step's value; ``item`` is the job's element (``batched``: the list
    of its elements).
    """
    found = as_reference(value)
    if found is not None:
        return _resolve_one(*found, result=result, item=item, batched=batched)
    if isinstance(value, Mapping):
        return {k: resolve(v, result=result, item=item, batched=batched) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve(v, result=result, item=item, batched=batched) for v in value]
    return value


def _resolve_one(
    key: str, argument: Any, *, result: Callable[[str], StepValue], item: Any, batched: bool
) -> Any:
    if key == LITERAL:
        return argument
    if key == PARAM:
        raise InvalidWorkflow(f"template parameter {argument!r} was not given a value")
    if key == ITEM:
        if item is MISSING:
            raise InvalidWorkflow("{'$item': ...} is only meaningful in a for_each step's args")
        path = item_path(argument)
        where = f"{{'$item': {argument!r}}}"
        if batched:
            return [lookup(element, path, where) for element in item]
        return lookup(item, path, where)
    step, path = split_path(argument)
    value, per_element = result(step)
    where = f"{{'$result': {argument!r}}}"
    if per_element:
        return [lookup(element, path, where) for element in value]
    return lookup(value, path, where)


def substitute(value: Any, params: Mapping[str, Any]) -> Any:
    """``value`` with every ``{"$param": name}`` replaced by ``params[name]``.

    :class:`InvalidWorkflow` names a parameter that has no value.
    """
    found = as_reference(value)
    if found is not None and found[0] == PARAM:
        name = found[1]
        if not isinstance(name, str) or name not in params:
            raise InvalidWorkflow(f"template parameter {name!r} was not given a value")
        return params[name]
    if found is not None and found[0] == LITERAL:
        return value
    if isinstance(value, Mapping):
        return {k: substitute(v, params) for k, v in value.items()}
    if isinstance(value, list):
        return [substitute(v, params) for v in value]
    return value
