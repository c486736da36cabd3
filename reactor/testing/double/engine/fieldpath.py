"""Reaching into a document copy to change one field, as update operators do.

:func:`parent` walks to the container of a path's last component, creating empty documents on
the way when asked (``$set``), padding arrays with nulls for numeric components beyond their
end, and failing with 28 ``PathNotViable`` where a scalar is in the way, as MongoDB does.
"""

from __future__ import annotations

from typing import Any

from reactor.testing.double.engine.paths import MISSING
from reactor.testing.double.replies import CommandFailed


def parent(doc: Any, parts: tuple[str, ...], *, create: bool) -> Any:
    """The dict or list holding ``parts[-1]``; None when absent and ``create`` is False."""
    node = doc
    for depth, part in enumerate(parts[:-1]):
        child = child_of(node, part)
        if child is MISSING or (child is None and isinstance(node, list)):
            if not create:
                return None
            _check_container(node, parts, depth)
            child = {}
            put(node, part, child)
        elif not isinstance(child, dict | list):
            if not create:
                return None
            raise _not_viable(parts, depth + 1, child)
        node = child
    if create:
        _check_container(node, parts, len(parts) - 1)
    return node if isinstance(node, dict | list) else None


def _check_container(node: Any, parts: tuple[str, ...], depth: int) -> None:
    if isinstance(node, list) and not parts[depth].isdigit():
        raise CommandFailed(
            28,
            f"Cannot create field '{parts[depth]}' in element "
            f"{{{parts[depth - 1] if depth else ''}: {node!r}}}",
        )


def _not_viable(parts: tuple[str, ...], depth: int, value: Any) -> CommandFailed:
    return CommandFailed(
        28, f"Cannot create field '{parts[depth]}' in element {{{parts[depth - 1]}: {value!r}}}"
    )


def child_of(node: Any, part: str) -> Any:
    if isinstance(node, dict):
        return node.get(part, MISSING)
    if isinstance(node, list) and part.isdigit() and int(part) < len(node):
        return node[int(part)]
    return MISSING


def put(node: Any, part: str, value: Any) -> None:
    """Set ``node[part]``; a list index past the end pads the list with nulls."""
    if isinstance(node, dict):
        node[part] = value
        return
    index = int(part)
    while len(node) <= index:
        node.append(None)
    node[index] = value


def remove(node: Any, part: str) -> None:
    """``$unset`` of one component: a field goes away, an array element becomes null."""
    if isinstance(node, dict):
        node.pop(part, None)
    elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
        node[int(part)] = None
