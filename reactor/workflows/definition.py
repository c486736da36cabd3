"""A workflow's definition: its steps checked and put in order (pure).

:func:`parse` turns the ``steps`` and ``output`` of a workflow document into a
:class:`Definition`, or raises :class:`InvalidWorkflow` with a message that says what is wrong:
a malformed step, a duplicate or unknown step name, an unknown command, a cycle in ``after``, a
``$result`` naming a step that is not upstream (``after``, directly or through other steps), an
``$item`` outside a ``for_each`` step's args, a ``$param`` left without a value. A workflow
whose definition does not parse fails at once, before any of its jobs exists.

Cycles are found by the standard library's :mod:`graphlib`; the steps are kept in definition
order as far as ``after`` allows.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from graphlib import CycleError, TopologicalSorter
from typing import Any

from reactor.callbacks.policy import url_problem
from reactor.errors import InvalidWorkflow
from reactor.workflows import model
from reactor.workflows import references as refs

STEP_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,63}")
MAX_STEPS = 200
MAX_BATCH = 100_000
STEP_KEYS = frozenset(
    {model.NAME, model.COMMAND, model.ARGS, model.AFTER, model.FOR_EACH, model.BATCH}
)

Commands = Callable[[str], bool]  # is this command served? (None: not checked)


@dataclass(frozen=True)
class Step:
    """One step: ``command`` with ``args``, after the steps in ``after``; with ``for_each``,
    one job per element (``batch``: per ``batch`` elements, handed over as lists)."""

    name: str
    command: str
    args: Mapping[str, Any]
    after: tuple[str, ...] = ()
    for_each: Any = None
    batch: int | None = None
    upstream: frozenset[str] = frozenset()  # every step before it, through ``after``

    @property
    def fans_out(self) -> bool:
        return self.for_each is not None


@dataclass(frozen=True)
class Definition:
    """The steps in an order that puts every step after its ``after`` steps, and the output."""

    steps: tuple[Step, ...]
    output: Any

    def step(self, name: str) -> Step:
        return next(s for s in self.steps if s.name == name)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.steps)

    def downstream(self, name: str) -> frozenset[str]:
        """Every step that comes after ``name`` through ``after``."""
        return frozenset(s.name for s in self.steps if name in s.upstream)


def parse(steps: Any, output: Any = None, *, commands: Commands | None = None) -> Definition:
    """The definition of ``steps`` (and ``output``: by default the last steps' results)."""
    if not isinstance(steps, list) or not steps:
        raise InvalidWorkflow("steps must be a non-empty list of steps")
    if len(steps) > MAX_STEPS:
        raise InvalidWorkflow(f"{len(steps)} steps: at most {MAX_STEPS}")
    parsed = [_step(raw, i, commands) for i, raw in enumerate(steps)]
    by_name: dict[str, Step] = {}
    for step in parsed:
        if step.name in by_name:
            raise InvalidWorkflow(f"two steps are named {step.name!r}")
        by_name[step.name] = step
    for step in parsed:
        for name in step.after:
            if name not in by_name:
                raise InvalidWorkflow(f"step {step.name!r}: after names unknown step {name!r}")
    ordered = _with_upstream(_in_order(parsed), by_name)
    for step in ordered:
        _check_references(step)
    final = _default_output(ordered) if output is None else output
    _check_output(final, set(by_name))
    return Definition(tuple(ordered), final)


def _step(raw: Any, position: int, commands: Commands | None) -> Step:
    if not isinstance(raw, Mapping):
        raise InvalidWorkflow(f"steps[{position}] is not a document")
    name = raw.get(model.NAME)
    if not isinstance(name, str) or not STEP_NAME.fullmatch(name):
        raise InvalidWorkflow(
            f"steps[{position}]: name {name!r} must start with a letter and hold only letters, "
            "digits, '_' and '-' (at most 64)"
        )
    unknown = sorted(set(raw) - STEP_KEYS)
    if unknown:
        known = ", ".join(sorted(STEP_KEYS))
        raise InvalidWorkflow(f"step {name!r}: unknown field(s) {unknown} (known: {known})")
    command = raw.get(model.COMMAND)
    if not isinstance(command, str) or not command:
        raise InvalidWorkflow(f"step {name!r}: command must be a non-empty string")
    if commands is not None and not commands(command):
        raise InvalidWorkflow(f"step {name!r}: unknown command {command!r}")
    args = raw.get(model.ARGS, {})
    if not isinstance(args, Mapping):
        raise InvalidWorkflow(f"step {name!r}: args must be a document")
    after = raw.get(model.AFTER, [])
    if not isinstance(after, list) or not all(isinstance(a, str) for a in after):
        raise InvalidWorkflow(f"step {name!r}: after must be a list of step names")
    if name in after:
        raise InvalidWorkflow(f"step {name!r} cannot come after itself")
    for_each = raw.get(model.FOR_EACH)
    return Step(
        name,
        command,
        dict(args),
        tuple(dict.fromkeys(after)),
        for_each,
        _batch(name, raw, for_each),
    )


def _batch(name: str, raw: Mapping[str, Any], for_each: Any) -> int | None:
    if model.BATCH not in raw or raw[model.BATCH] is None:
        return None
    batch = raw[model.BATCH]
    if for_each is None:
        raise InvalidWorkflow(f"step {name!r}: batch needs for_each")
    if isinstance(batch, bool) or not isinstance(batch, int) or not 1 <= batch <= MAX_BATCH:
        raise InvalidWorkflow(f"step {name!r}: batch must be a whole number from 1 to {MAX_BATCH}")
    return batch


def _in_order(steps: list[Step]) -> list[Step]:
    """The steps, each after its ``after`` steps, otherwise in definition order."""
    position = {s.name: i for i, s in enumerate(steps)}
    sorter = TopologicalSorter({s.name: s.after for s in steps})
    try:
        sorter.prepare()
    except CycleError as exc:
        cycle = " -> ".join(reversed(exc.args[1]))
        raise InvalidWorkflow(f"the steps' after fields form a cycle: {cycle}") from None
    names: list[str] = []
    while sorter.is_active():
        ready = sorted(sorter.get_ready(), key=position.__getitem__)
        names += ready
        sorter.done(*ready)
    by_name = {s.name: s for s in steps}
    return [by_name[n] for n in names]


def _with_upstream(ordered: list[Step], by_name: dict[str, Step]) -> list[Step]:
    upstream: dict[str, frozenset[str]] = {}
    done = []
    for step in ordered:
        found = frozenset().union(*({a} | upstream[a] for a in step.after))
        upstream[step.name] = found
        done.append(
            Step(step.name, step.command, step.args, step.after, step.for_each, step.batch, found)
        )
    return done


def _check_references(step: Step) -> None:
    for key, argument in refs.walk(step.for_each):
        if key == refs.ITEM:
            raise InvalidWorkflow(f"step {step.name!r}: for_each cannot use $item")
        _check_one(step, key, argument, "for_each")
    for key, argument in refs.walk(step.args):
        if key == refs.ITEM and not step.fans_out:
            raise InvalidWorkflow(f"step {step.name!r}: $item needs for_each on the step")
        _check_one(step, key, argument, "args")


def _check_one(step: Step, key: str, argument: Any, where: str) -> None:
    where = f"step {step.name!r} {where}"
    if key == refs.PARAM:
        raise InvalidWorkflow(f"{where}: template parameter {argument!r} was not given a value")
    if key == refs.ITEM:
        refs.item_path(argument)
        return
    name, _ = refs.split_path(argument)
    if name not in step.upstream:
        before = ", ".join(sorted(step.upstream)) or "none"
        raise InvalidWorkflow(
            f"{where}: $result {argument!r} names step {name!r}, which is not upstream of it "
            f"(add it to after; upstream now: {before})"
        )


def _default_output(steps: list[Step]) -> Any:
    """The result of the one last step, or a document of every last step's result."""
    used = {a for s in steps for a in s.after}
    last = [s.name for s in steps if s.name not in used]
    if len(last) == 1:
        return {refs.RESULT: last[0]}
    return {name: {refs.RESULT: name} for name in last}


def _check_output(output: Any, names: set[str]) -> None:
    for key, argument in refs.walk(output):
        if key != refs.RESULT:
            raise InvalidWorkflow(f"output may only hold $result references, not {key}")
        name, _ = refs.split_path(argument)
        if name not in names:
            raise InvalidWorkflow(f"output: $result {argument!r} names unknown step {name!r}")


def of_workflow(doc: Mapping[str, Any], *, commands: Commands | None = None) -> Definition:
    """The definition of a workflow document, with its own fields checked too."""
    workflow_id = doc.get(model.WORKFLOW_ID)
    if not isinstance(workflow_id, str) or not workflow_id:
        raise InvalidWorkflow("a workflow needs a workflow_id: a non-empty string")
    url = doc.get(model.CALLBACK_URL)
    if url is not None and (problem := url_problem(url)) is not None:
        raise InvalidWorkflow(problem)
    priority = doc.get(model.PRIORITY)
    if priority is not None and (isinstance(priority, bool) or not isinstance(priority, int)):
        raise InvalidWorkflow(f"priority {priority!r} is not an integer")
    return parse(doc.get(model.STEPS), doc.get(model.OUTPUT), commands=commands)
