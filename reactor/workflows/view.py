"""A workflow as people read it: ``reactor status WORKFLOW_ID``'s tree (pure).

::

    workflow  scan-42  running (run 1)
    progress  1 of 4 steps, 5 of 12 elements
    created   2026-12-01 12:00:00    started 2026-12-01 12:00:00
    ├── split    succeeded  1 job                    0.8 s
    ├── prepare  running    6 jobs  12 elements  5 done  (3 succeeded, 2 running, 1 queued)
    │   ├── scan-42.prepare.3  running  (attempt 1)
    │   └── ...
    ├── ocr      pending
    └── join     pending

A ``for_each`` step lists its jobs that are not done yet, then the failed and cancelled ones
(at most :data:`JOBS_SHOWN`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from reactor import job_view
from reactor.workflows import model

Doc = Mapping[str, Any]
JOBS_SHOWN = 8
_SHOWN_FIRST = ("failed", "running", "cancelled", "queued")


def tree(workflow: Doc, jobs: Sequence[Doc]) -> str:
    """The ``reactor status`` page of a workflow."""
    status = workflow.get(model.STATUS) or "queued"
    lines = [
        f"workflow  {workflow.get(model.WORKFLOW_ID)}  {status} (run {workflow.get(model.RUN, 1)})"
    ]
    lines += _heading(workflow)
    states = workflow.get(model.STEP_STATES) or {}
    names = [s.get(model.NAME) for s in workflow.get(model.STEPS) or [] if isinstance(s, Mapping)]
    width = max((len(str(n)) for n in names), default=4)
    by_step: dict[str, list[Doc]] = {}
    for job in jobs:
        link = job.get(model.LINK) or {}
        by_step.setdefault(str(link.get("step")), []).append(job)
    for i, name in enumerate(names):
        last = i == len(names) - 1
        state = states.get(name) or {}
        lines.append(("└── " if last else "├── ") + _step_line(str(name), state, width))
        lines += _job_lines(by_step.get(str(name), []), "    " if last else "│   ")
    return "\n".join(line.rstrip() for line in lines)


def _heading(workflow: Doc) -> list[str]:
    lines = []
    progress = workflow.get(model.PROGRESS)
    if isinstance(progress, Mapping):
        text = f"{progress.get('steps_done')} of {progress.get('steps_total')} steps"
        if progress.get("elements_total"):
            text += (
                f", {progress.get('elements_done')} of {progress.get('elements_total')} elements"
            )
        lines.append(f"progress  {text}")
    times = [
        f"{label} {job_view.when(workflow.get(field))}"
        for label, field in (
            ("created", model.CREATED_AT),
            ("started", model.STARTED_AT),
            ("finished", model.FINISHED_AT),
        )
        if workflow.get(field) is not None
    ]
    if times:
        took = workflow.get(model.DURATION_MS)
        lines.append(
            "times     " + "    ".join(times) + (f"  ({took / 1000:.1f} s)" if took else "")
        )
    error = workflow.get(model.ERROR)
    if isinstance(error, Mapping):
        where = f" in step {error['step']}" if error.get("step") else ""
        lines.append(f"error     {error.get('type')}{where}: {error.get('message')}")
    if workflow.get(model.CANCEL_REQUESTED):
        lines.append("cancel    requested")
    callback = workflow.get(model.CALLBACK)
    if isinstance(callback, Mapping):
        lines.append(
            f"callback  {callback.get('state')} after {callback.get('attempts')} "
            f"attempt(s), last status {callback.get('last_status')}"
        )
    return lines


def _step_line(name: str, state: Doc, width: int) -> str:
    status = str(state.get("status") or "pending")
    parts = [name.ljust(width), status.ljust(9)]
    jobs = state.get("jobs") or 0
    if jobs:
        parts.append(f"{jobs} job{'s' if jobs != 1 else ''}")
    if state.get("elements") is not None and jobs > 1:
        parts.append(f"{state['elements']} elements  {state.get('done', 0)} done")
    counts = state.get("counts") or {}
    mixed = [f"{n} {s}" for s, n in counts.items() if n] if len(counts) else []
    if len(mixed) > 1:
        parts.append("(" + ", ".join(mixed) + ")")
    took = _seconds(state.get("started_at"), state.get("finished_at"))
    if took is not None:
        parts.append(f"{took:.1f} s")
    return "  ".join(parts)


def _job_lines(jobs: list[Doc], indent: str) -> list[str]:
    if len(jobs) <= 1:
        return []
    shown = sorted(
        (j for j in jobs if job_view.status_of(j) in _SHOWN_FIRST),
        key=lambda j: _SHOWN_FIRST.index(job_view.status_of(j)),
    )[:JOBS_SHOWN]
    lines = []
    for i, job in enumerate(shown):
        branch = "└── " if i == len(shown) - 1 else "├── "
        attempt = f"  (attempt {job.get('attempt')})" if job.get("attempt") else ""
        lines.append(f"{indent}{branch}{job.get('job_id')}  {job_view.status_of(job)}{attempt}")
    return lines


def _seconds(start: Any, end: Any) -> float | None:
    if isinstance(start, datetime) and isinstance(end, datetime):
        return (end - start).total_seconds()
    return None
