"""What a step's jobs say about it, and what the steps say about the workflow (pure).

A step is ``pending`` until its jobs exist, then its jobs' aggregate (:func:`aggregate`). The
workflow's status follows OCR-D's rule with cancellation first (:func:`workflow_status`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from reactor import model as job_model
from reactor.workflows import model
from reactor.workflows.definition import Step
from reactor.workflows.model import StepJob, StepStatus, Workflow, WorkflowStatus

HALTING = frozenset({StepStatus.FAILED, StepStatus.CANCELLED})


@dataclass(frozen=True)
class StepView:
    """What the decision knows of one step."""

    status: StepStatus
    jobs: tuple[StepJob, ...] = ()  # existing and about to be created, in index order
    complete: bool = False  # every job the step has exists
    error: dict[str, Any] | None = None


def view_of(step: Step, jobs: Sequence[StepJob]) -> StepView:
    """A step's view from its existing jobs (jobs still to be created count as queued)."""
    if not jobs:
        return StepView(StepStatus.PENDING)
    ordered = tuple(sorted(jobs, key=lambda j: j.link.index or 0))
    of = max(j.link.of for j in ordered) if step.fans_out else 1
    counts = Counter(j.status for j in ordered)
    counts[job_model.Status.QUEUED.value] += max(0, of - len(ordered))
    return StepView(aggregate(counts), ordered, len(ordered) >= of)


def aggregate(counts: Mapping[str, int]) -> StepStatus:
    """A step's state from its jobs' statuses: any failed, else any cancelled, else all
    succeeded, else running once any runs or succeeded, else queued."""
    if counts.get("failed", 0):
        return StepStatus.FAILED
    if counts.get("cancelled", 0):
        return StepStatus.CANCELLED
    total = sum(counts.values())
    if counts.get("succeeded", 0) == total:
        return StepStatus.SUCCEEDED
    if counts.get("running", 0) or counts.get("succeeded", 0):
        return StepStatus.RUNNING
    return StepStatus.QUEUED


def workflow_status(
    wf: Workflow, views: Mapping[str, StepView], error: Mapping[str, Any] | None
) -> WorkflowStatus:
    """OCR-D's rule, cancellation first: cancelled on request; failed when the definition is
    invalid or any step failed or was cancelled; succeeded when every step did; running once
    any step runs or succeeded; else queued."""
    if wf.cancelling:
        return WorkflowStatus.CANCELLED
    statuses = {v.status for v in views.values()}
    if error is not None or not views or statuses & HALTING:
        return WorkflowStatus.FAILED
    if statuses == {StepStatus.SUCCEEDED}:
        return WorkflowStatus.SUCCEEDED
    if statuses & {StepStatus.RUNNING, StepStatus.SUCCEEDED}:
        return WorkflowStatus.RUNNING
    return WorkflowStatus.QUEUED


def with_created(view: StepView, docs: list[dict[str, Any]]) -> StepView:
    new = tuple(
        StepJob(d[job_model.JOB_ID], model.Link.from_doc(d[model.LINK]) or _never(), "queued")
        for d in docs
    )
    jobs = tuple(sorted(view.jobs + new, key=lambda j: j.link.index or 0))
    if not jobs:
        return StepView(StepStatus.SUCCEEDED, (), True)  # a for_each over no elements
    return StepView(aggregate(Counter(j.status for j in jobs)), jobs, True)


def _never() -> model.Link:
    raise AssertionError("a created job always carries its link")


def after_halt(view: StepView) -> StepView:
    if view.status is StepStatus.PENDING:
        return replace(view, status=StepStatus.CANCELLED)
    return view


def jobs_by_step(jobs: Sequence[StepJob]) -> dict[str, list[StepJob]]:
    found: dict[str, list[StepJob]] = {}
    for job in jobs:
        found.setdefault(job.link.step, []).append(job)
    return found
