"""find projections: inclusion or exclusion of (dotted) fields, ``$slice``, ``$elemMatch``, ``a.$``.

Dotted paths reach into arrays of documents as MongoDB's do (``{"a.b": 1}`` keeps ``b`` in every
element of ``a``); inclusion keeps the document's own field order. Computed fields (aggregation
expressions) and ``$meta`` answer 238.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from reactor.testing.double.engine.matcher import compile_filter
from reactor.testing.double.engine.paths import split
from reactor.testing.double.engine.positional import matched_position
from reactor.testing.double.replies import CommandFailed, Doc, not_supported

Projector = Callable[[Doc], Doc]
Tree = dict[str, Any]


def compile_projection(spec: Any, query: Doc | None = None) -> Projector | None:
    """The function projecting a document through ``spec`` (None: no projection)."""
    if not spec:
        return None
    if not isinstance(spec, dict):
        raise CommandFailed(2, "projection must be an object")
    tree: Tree = {}
    extras: list[Callable[[Doc, Doc], None]] = []
    include_id, inclusion, sliced = True, None, []
    for path, value in spec.items():
        mode = _mode(path, value)
        if path == "_id" and mode in {"include", "exclude"}:
            include_id = mode == "include"
            continue
        if mode in {"slice", "elemMatch", "positional"}:
            extras.append(_special(path, value, mode, query or {}))
            if mode == "slice":
                sliced.append(path)
                continue
            mode = "include"
        wanted = mode == "include"
        if inclusion is not None and inclusion != wanted:
            kind, other = ("inclusion", "exclusion") if wanted else ("exclusion", "inclusion")
            raise CommandFailed(31254, f"Cannot do {kind} on field {path} in {other} projection")
        inclusion = wanted
        _add(tree, split(path.removesuffix(".$")))
    if inclusion is None:  # only _id named: {_id: 1} keeps just _id, {_id: 0} drops it
        inclusion = include_id and not sliced and not extras
    for path in sliced if inclusion else ():
        _add(tree, split(path))
    if inclusion and include_id:
        tree.setdefault("_id", True)
    if not inclusion and not include_id:
        tree["_id"] = True
    shape = _include if inclusion else _exclude

    def project(doc: Doc) -> Doc:
        out = shape(doc, tree)
        for extra in extras:
            extra(doc, out)
        return out

    return project


def _mode(path: str, value: Any) -> str:
    if path.endswith(".$"):
        return "positional"
    if isinstance(value, dict):
        if "$slice" in value:
            return "slice"
        if "$elemMatch" in value:
            return "elemMatch"
        raise not_supported(f"the projection {path}: {value!r}")
    if isinstance(value, bool | int | float):
        return "include" if value else "exclude"
    raise not_supported(f"the computed projection {path}: {value!r}")


def _add(tree: Tree, parts: tuple[str, ...]) -> None:
    node = tree
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if child is True:
            return
        node = child
    node[parts[-1]] = True


def _include(doc: Any, tree: Tree) -> Doc:
    out: Doc = {}
    for key, value in doc.items():
        sub = tree.get(key)
        if sub is None:
            continue
        if sub is True:
            out[key] = value
        elif isinstance(value, dict):
            out[key] = _include(value, sub)
        elif isinstance(value, list):
            out[key] = [_include(item, sub) for item in value if isinstance(item, dict)]
    return out


def _exclude(doc: Any, tree: Tree) -> Doc:
    out: Doc = {}
    for key, value in doc.items():
        sub = tree.get(key)
        if sub is True:
            continue
        if sub is None:
            out[key] = value
        elif isinstance(value, dict):
            out[key] = _exclude(value, sub)
        elif isinstance(value, list):
            out[key] = [_exclude(item, sub) if isinstance(item, dict) else item for item in value]
        else:
            out[key] = value
    return out


def _special(path: str, value: Any, mode: str, query: Doc) -> Callable[[Doc, Doc], None]:
    if "." in path.removesuffix(".$"):
        raise not_supported(f"{mode} projection of the nested field {path}")
    field = path.removesuffix(".$")
    if mode == "slice":
        return _slicer(field, value["$slice"])
    if mode == "elemMatch":
        test = compile_filter(value["$elemMatch"])

        def first_match(doc: Doc, out: Doc) -> None:
            array = doc.get(field)
            out.pop(field, None)
            if isinstance(array, list):
                found = [item for item in array if isinstance(item, dict) and test(item)][:1]
                if found:
                    out[field] = found

        return first_match

    def positional(doc: Doc, out: Doc) -> None:
        if isinstance(doc.get(field), list):
            out[field] = [doc[field][matched_position(doc, (field,), query)]]

    return positional


def _slicer(field: str, arg: Any) -> Callable[[Doc, Doc], None]:
    if isinstance(arg, int) and not isinstance(arg, bool):
        window = slice(arg, None) if arg < 0 else slice(0, arg)
    elif isinstance(arg, list) and len(arg) == 2 and all(isinstance(x, int) for x in arg):
        if arg[1] <= 0:
            raise CommandFailed(2, "$slice limit must be positive")
        window = slice(arg[0], None if arg[0] < 0 and arg[0] + arg[1] >= 0 else arg[0] + arg[1])
    else:
        raise CommandFailed(2, "$slice takes a number or an array of two numbers")

    def cut(doc: Doc, out: Doc) -> None:
        if isinstance(out.get(field), list):
            out[field] = out[field][window]

    return cut
