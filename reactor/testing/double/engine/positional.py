"""The positional ``$``: which array element the query matched, for updates and projections."""

from __future__ import annotations

from typing import Any

from reactor.testing.double.engine.conjuncts import conjuncts
from reactor.testing.double.engine.fieldpath import child_of, parent, put
from reactor.testing.double.engine.matcher import compile_filter
from reactor.testing.double.engine.paths import deep_copy
from reactor.testing.double.replies import CommandFailed, Doc


def matched_position(doc: Doc, array_parts: tuple[str, ...], query: Doc) -> int:
    """The first element of the array at ``array_parts`` satisfying the query's predicates on it.

    Each element is tried alone in place of the array; the first for which the predicates
    naming that array (or paths inside it) hold is the one ``$`` stands for.
    """
    array: Any = doc
    for part in array_parts:
        array = child_of(array, part)
    path = ".".join(array_parts)
    fields, _ = conjuncts(query)
    relevant = [
        {p: cond}
        for p, conds in fields.items()
        if p == path or p.startswith(path + ".")
        for cond in conds
    ]
    if array_parts and isinstance(array, list) and relevant:
        test = compile_filter({"$and": relevant})
        for i, item in enumerate(array):
            trial = deep_copy(doc)
            holder = parent(trial, array_parts, create=False)
            if holder is not None:
                put(holder, array_parts[-1], [item])
                if test(trial):
                    return i
    raise CommandFailed(2, "The positional operator did not find the match needed from the query.")
