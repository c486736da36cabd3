"""From a ready step to its job documents, and from its jobs' results back to its value (pure).

A step without ``for_each`` is one job, ``<workflow_id>.<step>``. A ``for_each`` step is one
job per element of the list its ``for_each`` resolves to, ``<workflow_id>.<step>.<i>`` from 0;
with ``batch: N``, one job per ``N`` elements (the last may hold fewer), whose ``$item``
references are lists. A list of no elements makes no job: the step succeeds at once, and its
value is the empty list.

A step's value, as later references see it: the job's result; for a ``for_each`` step, the list
of its elements' results in element order. A batched job must return a list with one result per
element it was given; anything else fails the workflow with :class:`StepInputFailed`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from reactor import model as job_model
from reactor.errors import StepInputFailed
from reactor.workflows import model
from reactor.workflows import references as refs
from reactor.workflows.definition import Definition, Step

Results = Mapping[str, Any]  # job_id -> the result value of a succeeded job


def expand(
    workflow_id: str,
    step: Step,
    definition: Definition,
    value_of: Callable[[str], refs.StepValue],
    *,
    priority: Any = None,
) -> list[dict[str, Any]]:
    """The job documents of ``step`` (``value_of(step)``: an upstream step's value)."""
    upstream = tuple(sorted(step.upstream))
    closed = tuple(sorted(set(definition.names) - step.upstream - {step.name}))

    def job(index: int | None, of: int, first: int, args: Any, count: int) -> dict[str, Any]:
        link = model.Link(workflow_id, step.name, index, of, first, count, upstream, closed)
        doc = {
            job_model.JOB_ID: model.step_job_id(workflow_id, step.name, index),
            job_model.COMMAND: step.command,
            job_model.ARGS: args,
            model.LINK: link.to_doc(),
        }
        if priority is not None:
            doc[job_model.PRIORITY] = priority
        return doc

    if not step.fans_out:
        return [job(None, 1, 0, refs.resolve(step.args, result=value_of), 1)]
    elements = elements_of(step, value_of)
    size = step.batch or 1
    chunks = [elements[i : i + size] for i in range(0, len(elements), size)]
    batched = step.batch is not None
    return [
        job(i, len(chunks), i * size, _args(step, chunk, value_of, batched), len(chunk))
        for i, chunk in enumerate(chunks)
    ]


def elements_of(step: Step, value_of: Callable[[str], refs.StepValue]) -> list[Any]:
    """The list ``for_each`` resolves to (:class:`StepInputFailed` for anything else)."""
    elements = refs.resolve(step.for_each, result=value_of)
    if not isinstance(elements, list):
        raise StepInputFailed(
            f"step {step.name!r}: for_each resolved to {type(elements).__name__}, not a list"
        )
    return elements


def _args(
    step: Step, chunk: list[Any], value_of: Callable[[str], refs.StepValue], batched: bool
) -> Any:
    item = chunk if batched else chunk[0]
    return refs.resolve(step.args, result=value_of, item=item, batched=batched)


def step_value(step: Step, jobs: Sequence[model.StepJob], results: Results) -> refs.StepValue:
    """``step``'s value from its succeeded jobs (``jobs`` in index order)."""
    if not step.fans_out:
        return results[jobs[0].job_id], False
    if step.batch is None:
        return [results[j.job_id] for j in jobs], True
    elements: list[Any] = []
    for j in jobs:
        value = results[j.job_id]
        if not isinstance(value, list) or len(value) != j.link.count:
            got = f"a list of {len(value)}" if isinstance(value, list) else type(value).__name__
            raise StepInputFailed(
                f"step {step.name!r}: job {j.job_id} returned {got}; a batched step returns a "
                f"list of {j.link.count} results, one per element it was given"
            )
        elements += value
    return elements, True


def result_value(result_doc: Mapping[str, Any]) -> Any:
    """The value a stored result document holds (its ``result``)."""
    return result_doc.get(job_model.RESULT)
