"""The pure decisions: from a stored workflow and its step jobs, what happens next.

:func:`decide` reads nothing and writes nothing. Given the workflow document, its parsed
definition (or why it does not parse), the stored states of its step jobs and the results it
asked for, it returns a :class:`Decision`: which failed or cancelled jobs to queue again (a
re-run), which step jobs to create, which to cancel, and the workflow fields to write; or
:class:`NeedResults` naming the results it must see first. Running it twice on the same documents
gives the same decision, and writing a decision twice is harmless, so any reactor may advance
any workflow at any time.

- A step's jobs are created once every step in its ``after`` has succeeded, and only while the
  workflow is neither cancelled nor failed.
- A step's state is its jobs' aggregate; the workflow's is OCR-D's rule with cancellation
  first (``steps.py``).
- A failed or cancelled step halts the workflow: steps without jobs end ``cancelled`` and every
  unfinished step job is cancelled. The workflow is *finished* (``finished_at``, ``result``, its
  callback) once its status is final and none of its jobs is queued or running.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from reactor import model as job_model
from reactor.callbacks import model as callbacks
from reactor.errors import InvalidWorkflow, StepInputFailed, WorkflowError
from reactor.workflows import fanout, model, state
from reactor.workflows import references as refs
from reactor.workflows.definition import Definition
from reactor.workflows.model import StepJob, StepStatus, Workflow, WorkflowStatus
from reactor.workflows.steps import (
    HALTING,
    StepView,
    after_halt,
    jobs_by_step,
    view_of,
    with_created,
    workflow_status,
)

Results = Mapping[str, Mapping[str, Any] | None]  # job_id -> result document (None: none stored)
ERROR_MESSAGE_MAX = 500
MANAGED = (
    model.STATUS,
    model.RUN,
    model.STEP_STATES,
    model.PROGRESS,
    model.CREATED_AT,
    model.STARTED_AT,
    model.FINISHED_AT,
    model.DURATION_MS,
    model.RESULT,
    model.ERROR,
)
RERUN_CLEARS = (model.CANCEL_REQUESTED, model.CANCEL_REQUESTED_AT, model.CALLBACK)


@dataclass(frozen=True)
class NeedResults:
    """Decide again once these jobs' result documents are known."""

    job_ids: frozenset[str]


@dataclass(frozen=True)
class Decision:
    requeue: tuple[tuple[str, int], ...] = ()  # (job_id, the run that ended) to queue again
    create: tuple[dict[str, Any], ...] = ()  # step job documents to insert
    cancel: tuple[str, ...] = ()  # step jobs to ask to cancel
    set: Mapping[str, Any] = field(default_factory=dict)  # workflow fields to write
    unset: tuple[str, ...] = ()  # workflow fields to remove

    @property
    def writes_workflow(self) -> bool:
        return bool(self.set or self.unset)


class _Missing(Exception):
    def __init__(self, job_ids: Iterable[str]) -> None:
        super().__init__("results needed")
        self.job_ids = frozenset(job_ids)


def decide(
    wf: Workflow,
    definition: Definition | InvalidWorkflow,
    jobs: Sequence[StepJob],
    results: Results,
    now: datetime,
    *,
    owner: str,
    taken: frozenset[str] = frozenset(),
) -> Decision | NeedResults:
    """The next writes for ``wf`` (``taken``: job ids held by jobs that are not its own)."""
    now = now.replace(microsecond=now.microsecond // 1000 * 1000)  # what BSON keeps
    try:
        return _decide(wf, definition, jobs, results, now, owner, taken)
    except _Missing as missing:
        return NeedResults(missing.job_ids)


def _decide(
    wf: Workflow,
    definition: Definition | InvalidWorkflow,
    jobs: Sequence[StepJob],
    results: Results,
    now: datetime,
    owner: str,
    taken: frozenset[str],
) -> Decision:
    requeue, jobs = rerun(wf, jobs)
    if isinstance(definition, InvalidWorkflow):
        views: dict[str, StepView] = {}
        create: list[dict[str, Any]] = []
        error: dict[str, Any] | None = error_doc(definition)
        output = None
    else:
        views, create, error = plan(wf, definition, jobs, results, taken)
        error, output = _output(wf, definition, views, error, jobs, results)
    status = workflow_status(wf, views, error)
    halted = status in (WorkflowStatus.FAILED, WorkflowStatus.CANCELLED)
    cancel = [j.job_id for j in jobs if halted and not j.final and not j.cancel_requested]
    unfinished = bool(create) or any(not j.final for j in jobs)
    finished = status in model.TERMINAL and not unfinished
    fans_out = (
        {}
        if isinstance(definition, InvalidWorkflow)
        else {s.name: s.fans_out for s in definition.steps}
    )
    desired = _desired(wf, views, fans_out, status, error, output, finished, jobs, now)
    writes, removes = _diff(wf.doc, desired)
    if wf.rerun_requested:
        removes += [name for name in RERUN_CLEARS if name in wf.doc and name not in removes]
    if finished and (wf.finished_at is None or wf.rerun_requested):
        writes |= _callback(wf, desired[model.RUN], owner, now)
    return Decision(tuple(requeue), tuple(create), tuple(cancel), writes, tuple(removes))


def rerun(wf: Workflow, jobs: Sequence[StepJob]) -> tuple[list[tuple[str, int]], list[StepJob]]:
    """On a re-run request: the failed and cancelled jobs to queue again, and the jobs as they
    will be once queued (succeeded jobs keep their results)."""
    if not wf.rerun_requested:
        return [], list(jobs)
    again = {j.job_id for j in jobs if j.status in ("failed", "cancelled")}
    requeue = [(j.job_id, j.run) for j in jobs if j.job_id in again]
    queued = job_model.Status.QUEUED.value
    return requeue, [
        replace(j, status=queued, cancel_requested=False, finished_at=None)
        if j.job_id in again
        else j
        for j in jobs
    ]


def plan(
    wf: Workflow,
    definition: Definition,
    jobs: Sequence[StepJob],
    results: Results,
    taken: frozenset[str],
) -> tuple[dict[str, StepView], list[dict[str, Any]], dict[str, Any] | None]:
    """Each step's view, the jobs to create, and the error that halts the workflow if any."""
    by_step = jobs_by_step(jobs)
    views = {s.name: view_of(s, by_step.get(s.name, [])) for s in definition.steps}
    error = None
    create: list[dict[str, Any]] = []
    halted = wf.cancelling or any(v.status in HALTING for v in views.values())
    if not halted:
        try:
            create = _create(wf, definition, views, results, taken)
        except WorkflowError as exc:
            error = error_doc(exc)
            views[error["step"]] = replace(
                views[error["step"]], status=StepStatus.FAILED, error=error
            )
            create, halted = [], True
    if halted or error is not None:
        views = {n: after_halt(v) for n, v in views.items()}
    return views, create, error or _first_failure(definition, views, results)


def _create(
    wf: Workflow,
    definition: Definition,
    views: dict[str, StepView],
    results: Results,
    taken: frozenset[str],
) -> list[dict[str, Any]]:
    """The jobs of every step whose ``after`` steps have succeeded (``views`` updated)."""
    created: list[dict[str, Any]] = []
    for step in definition.steps:
        view = views[step.name]
        if view.complete or any(views[a].status is not StepStatus.SUCCEEDED for a in step.after):
            continue
        try:
            docs = fanout.expand(
                wf.workflow_id,
                step,
                definition,
                _values(definition, views, results),
                priority=wf.doc.get(model.PRIORITY),
            )
        except WorkflowError as exc:
            exc.step = exc.step or step.name
            raise
        existing = {j.job_id for j in view.jobs}
        new = [d for d in docs if d[job_model.JOB_ID] not in existing]
        clash = sorted(d[job_model.JOB_ID] for d in new if d[job_model.JOB_ID] in taken)
        if clash:
            raise InvalidWorkflow(
                f"job_id {clash[0]!r} is held by a job that is not a step of workflow "
                f"{wf.workflow_id!r}",
                step=step.name,
            )
        created += new
        views[step.name] = with_created(view, new)
    return created


def _values(definition: Definition, views: Mapping[str, StepView], results: Results) -> Any:
    def value_of(name: str) -> refs.StepValue:
        jobs = views[name].jobs
        found = {j.job_id: results.get(j.job_id, _ABSENT) for j in jobs}
        missing = [job_id for job_id, doc in found.items() if doc is _ABSENT]
        if missing:
            raise _Missing(missing)
        values = {}
        for job_id, doc in found.items():
            if doc is None or job_model.RESULT not in doc:
                raise StepInputFailed(f"step {name!r}: no result is stored for job {job_id}")
            values[job_id] = doc[job_model.RESULT]
        return fanout.step_value(definition.step(name), jobs, values)

    return value_of


_ABSENT: Any = object()


def error_doc(exc: WorkflowError) -> dict[str, Any]:
    """A workflow error as stored: ``{type, message, step, job_id}``."""
    return {
        "type": type(exc).__name__,
        "message": exc.message[:ERROR_MESSAGE_MAX],
        "step": exc.step,
        "job_id": None,
    }


def _first_failure(
    definition: Definition, views: Mapping[str, StepView], results: Results
) -> dict[str, Any] | None:
    """Why the workflow failed: the first failed step's first failed job, else the first
    cancelled step's first cancelled job (its result says why)."""
    for wanted in ("failed", "cancelled"):
        for step in definition.steps:
            job = next((j for j in views[step.name].jobs if j.status == wanted), None)
            if job is not None:
                return _job_error(step.name, job, results)
    return None


def _job_error(step: str, job: StepJob, results: Results) -> dict[str, Any]:
    if job.status == "cancelled":
        kind, message = "StepCancelled", f"job {job.job_id} was cancelled"
    else:
        if job.job_id not in results:
            raise _Missing([job.job_id])
        stored = (results[job.job_id] or {}).get(job_model.ERROR)
        kind = "StepFailed"
        message = (
            f"{stored.get('type')}: {stored.get('message')}"
            if isinstance(stored, Mapping)
            else f"job {job.job_id} failed (see: reactor status {job.job_id})"
        )
    return {
        "type": kind,
        "message": message[:ERROR_MESSAGE_MAX],
        "step": step,
        "job_id": job.job_id,
    }


def _output(
    wf: Workflow,
    definition: Definition,
    views: Mapping[str, StepView],
    error: dict[str, Any] | None,
    jobs: Sequence[StepJob],
    results: Results,
) -> tuple[dict[str, Any] | None, Any]:
    """The workflow's result once every step succeeded and nothing runs; or the error that
    building it met."""
    done = all(v.status is StepStatus.SUCCEEDED for v in views.values())
    if error is not None or wf.cancelling or not done or any(not j.final for j in jobs):
        return error, None
    try:
        return None, refs.resolve(definition.output, result=_values(definition, views, results))
    except WorkflowError as exc:
        return {**error_doc(exc), "step": None}, None


def _desired(
    wf: Workflow,
    views: Mapping[str, StepView],
    fans_out: Mapping[str, bool],
    status: WorkflowStatus,
    error: dict[str, Any] | None,
    output: Any,
    finished: bool,
    jobs: Sequence[StepJob],
    now: datetime,
) -> dict[str, Any]:
    """Every field the reactor manages on the workflow, as it should be (``None``: absent)."""
    steps = {name: state.step_state(v, fans_out[name]) for name, v in views.items()}
    return {
        model.STATUS: status.value,
        model.RUN: wf.run + (1 if wf.rerun_requested else 0),
        model.STEP_STATES: steps,
        model.PROGRESS: state.progress(steps, fans_out),
        **state.timings(wf, jobs, finished, now),
        model.RESULT: output if finished and status is WorkflowStatus.SUCCEEDED else None,
        model.ERROR: error,
    }


def _diff(doc: Mapping[str, Any], desired: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    return state.diff(doc, {k: desired[k] for k in MANAGED})


def _callback(wf: Workflow, run: int, owner: str, now: datetime) -> dict[str, Any]:
    """A fresh delivery for a workflow that has just finished, if it asked for one."""
    url = wf.doc.get(model.CALLBACK_URL)
    if not url:
        return {}
    delivery_id = callbacks.workflow_delivery_id(wf.workflow_id, run)
    return {model.CALLBACK: callbacks.pending(delivery_id, owner, now)}
