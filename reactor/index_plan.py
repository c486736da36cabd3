"""Which of its indexes the reactor creates, finds already there, or needs replaced (pure).

The reactor needs the indexes of ``queries.INDEXES`` (jobs) and ``queries.RESULT_INDEXES``
(results). A collection a polling loop used often has an index on the same keys already, most
often ``job_id_1`` from ``create_index("job_id", unique=True)``. MongoDB refuses a second index
of the same signature (key, unique, sparse, partial filter, collation) under another name (85
IndexOptionsConflict) and a name reused for another signature (86 IndexKeySpecsConflict), so the
reactor decides from ``listIndexes`` first, for each index it needs:

* an existing index of the same keys (any name; a single key in either direction) that does what
  the reactor's would is **used** as it is: unique exactly when the reactor's is, visible, without
  collation, not partial unless with the reactor's own filter (a partial index of the reactor's
  may be served by a full one), sparse only where the reactor's index is unique or partial;
* otherwise such indexes are **unsuitable** (a plain ``job_id_1`` where a unique one is needed, a
  unique one where the reactor writes many equal keys, ...), and so is an index that has the
  reactor's name but other keys: ``reactor run`` stops naming them, ``reactor migrate --check``
  says what ``--apply`` will do, and ``--apply`` drops them and creates the reactor's own;
* with nothing on those keys, the reactor's index is **created**.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

Doc = Mapping[str, Any]
Spec = tuple[list[tuple[str, int]], dict[str, Any]]  # keys, createIndex options
FIX = "run `reactor migrate --apply` to replace it (`reactor migrate --check` shows what it does)"


class Action(enum.Enum):
    HAVE = "have"  # the reactor's own index is there
    USE = "use"  # another index of the same keys does the same: used as it is
    CREATE = "create"  # nothing on those keys: create the reactor's
    REPLACE = "replace"  # unsuitable indexes in the way: drop them (and create the reactor's)


@dataclass(frozen=True)
class Decision:
    """What to do about one index the reactor needs, on one collection."""

    collection: str
    name: str  # the reactor's index
    spec: Spec
    action: Action
    used: str | None = None  # the existing index that serves (HAVE, USE)
    drop: tuple[tuple[str, str], ...] = field(default=())  # (index, why unsuitable)

    @property
    def create(self) -> bool:
        return self.action is Action.CREATE or (self.action is Action.REPLACE and not self.used)

    def describe(self, *, applied: bool) -> str:
        """One line for ``reactor migrate`` (``applied``: done by ``--apply``, else to be done)."""
        ours = f"{self.name} {describe_spec(self.spec)}"
        if self.action is Action.HAVE:
            return f"{self.collection}: has {ours}"
        if self.action is Action.USE:
            verb = "uses" if applied else "would use"
            return f"{self.collection}: {verb} its index {self.used} as {ours}"
        if self.action is Action.CREATE:
            return f"{self.collection}: {'created' if applied else 'would create'} {ours}"
        drop = f"{'dropped' if applied else '--apply would drop'} {_unsuitable(self.drop)}"
        create = f" and {'created' if applied else 'create'} {ours}" if self.create else ""
        return f"{self.collection}: {drop}{create}"

    def problem(self) -> str:
        """The startup error's part about this index."""
        ours = f"{self.name} {describe_spec(self.spec)}"
        return f"{self.collection} has {_unsuitable(self.drop)}, where the reactor needs {ours}"


def decide(collection: str, wanted: Mapping[str, Spec], existing: Sequence[Doc]) -> list[Decision]:
    """A decision for each index of ``wanted``, given ``existing`` (``listIndexes`` output)."""
    return [_decide(collection, name, spec, existing) for name, spec in wanted.items()]


def conflict_message(decisions: Sequence[Decision]) -> str:
    """The one line ``reactor run`` stops with, naming every unsuitable index and the fix."""
    problems = "; ".join(d.problem() for d in decisions if d.action is Action.REPLACE)
    return f"{problems}: {FIX}"


def _decide(collection: str, name: str, spec: Spec, existing: Sequence[Doc]) -> Decision:
    keys, options = spec
    named = next((e for e in existing if e.get("name") == name), None)
    same = [e for e in existing if e.get("name") != "_id_" and _same_keys(e.get("key"), keys)]
    harmful = [e for e in same if bool(e.get("unique")) and not options.get("unique")]
    serving = [e for e in same if e not in harmful and _why_not(e, options) is None]
    pick = named if named is not None and named in serving else next(iter(serving), None)
    unsuitable = list(harmful)
    if pick is None:
        unsuitable += [e for e in same if e not in harmful]
        if named is not None and named not in unsuitable:
            unsuitable.append(named)
    if unsuitable:
        drop = tuple((str(e.get("name")), _reason(e, keys, options)) for e in unsuitable)
        return Decision(collection, name, spec, Action.REPLACE, used=_name(pick), drop=drop)
    if pick is None:
        return Decision(collection, name, spec, Action.CREATE)
    action = Action.HAVE if pick is named else Action.USE
    return Decision(collection, name, spec, action, used=_name(pick))


def _same_keys(key: Any, keys: list[tuple[str, int]]) -> bool:
    """The same fields in the same order, every direction the same or every one reversed."""
    if not isinstance(key, Mapping) or list(key) != [field for field, _ in keys]:
        return False
    directions = list(key.values())
    if not all(isinstance(d, int | float) and not isinstance(d, bool) for d in directions):
        return False  # hashed, text, 2dsphere: another kind of index
    signs = [(d > 0) == (want > 0) for d, (_, want) in zip(directions, keys, strict=True)]
    return all(signs) or not any(signs)


def _why_not(index: Doc, options: Mapping[str, Any]) -> str | None:
    """Why ``index`` (of the same keys) cannot stand in for the reactor's; ``None`` if it can."""
    if bool(index.get("unique")) != bool(options.get("unique")):
        return "is not unique" if options.get("unique") else "is unique"
    if index.get("hidden"):
        return "is hidden"
    collation = index.get("collation")
    if isinstance(collation, Mapping) and collation.get("locale") not in (None, "simple"):
        return f"has the collation {dict(collation)}"
    partial = index.get("partialFilterExpression")
    if partial is not None and partial != options.get("partialFilterExpression"):
        return f"is partial ({dict(partial)})"
    covers_all = not (options.get("unique") or options.get("partialFilterExpression"))
    if index.get("sparse") and covers_all:  # the reactor's index must hold missing fields too
        return "is sparse"
    return None


def _reason(index: Doc, keys: list[tuple[str, int]], options: Mapping[str, Any]) -> str:
    if not _same_keys(index.get("key"), keys):
        return f"has the reactor's index name but the key {dict(index.get('key') or {})}"
    if bool(index.get("unique")) and not options.get("unique"):
        return "is unique, and the reactor writes many documents with equal keys there"
    return _why_not(index, options) or "is unsuitable"


def _unsuitable(drop: Sequence[tuple[str, str]]) -> str:
    return " and ".join(f"the index {name} (it {why})" for name, why in drop)


def _name(index: Doc | None) -> str | None:
    return None if index is None else str(index.get("name"))


def describe_spec(spec: Spec) -> str:
    """``{job_id: 1} (unique, partial: {...})``."""
    keys, options = spec
    text = "{" + ", ".join(f"{field}: {direction}" for field, direction in keys) + "}"
    notes = ["unique"] * bool(options.get("unique"))
    if options.get("partialFilterExpression"):
        notes.append(f"partial: {options['partialFilterExpression']}")
    return text + (f" ({', '.join(notes)})" if notes else "")
