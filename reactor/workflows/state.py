"""The state a workflow document shows: per-step states and counts, progress, timings (pure).

Everything here is derived from the step jobs' stored states, so writing it again from the same
documents changes nothing; only ``created_at`` and ``finished_at`` are taken once, when first
seen, and kept.

- ``step_states.<step>``: ``status`` (``pending`` until its jobs exist), ``jobs``,
  ``elements`` (how many elements its jobs hold; 1 for a step without ``for_each``; ``null``
  before they exist), ``done`` (elements whose job succeeded), ``counts`` (its jobs by status),
  ``started_at`` (the first claim of any of its jobs), ``finished_at`` (the last of its jobs to
  end, once the step is final) and ``error``.
- ``progress``: ``steps_done`` of ``steps_total``, and ``elements_done`` of ``elements_total``
  over the ``for_each`` steps whose jobs exist (the total grows as fan-outs are expanded).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from reactor.workflows import model
from reactor.workflows.model import StepJob, StepStatus, Workflow
from reactor.workflows.steps import StepView

JOB_STATUSES = ("queued", "running", "succeeded", "failed", "cancelled")


def step_state(view: StepView, fans_out: bool) -> dict[str, Any]:
    """One entry of ``step_states``."""
    counts = dict.fromkeys(JOB_STATUSES, 0)
    for job in view.jobs:
        counts[job.status] = counts.get(job.status, 0) + 1
    elements = sum(j.link.count for j in view.jobs) if fans_out else 1
    final = view.status in (StepStatus.SUCCEEDED, StepStatus.FAILED, StepStatus.CANCELLED)
    ended = [j.finished_at for j in view.jobs if j.finished_at is not None]
    return {
        "status": view.status.value,
        "jobs": len(view.jobs),
        "elements": elements if view.complete else None,
        "done": sum(j.link.count for j in view.jobs if j.status == "succeeded"),
        "counts": counts,
        "started_at": _first([j.created_at for j in view.jobs]),
        "finished_at": max(ended) if final and ended and all(j.final for j in view.jobs) else None,
        "error": view.error,
    }


def progress(
    steps: Mapping[str, Mapping[str, Any]], fans_out: Mapping[str, bool]
) -> dict[str, int]:
    """``progress``: steps and ``for_each`` elements done, of their totals."""
    expanded = [s for name, s in steps.items() if fans_out[name] and s["elements"] is not None]
    return {
        "steps_done": sum(1 for s in steps.values() if s["status"] == StepStatus.SUCCEEDED),
        "steps_total": len(steps),
        "elements_done": sum(int(s["done"]) for s in expanded),
        "elements_total": sum(int(s["elements"]) for s in expanded),
    }


def timings(wf: Workflow, jobs: Sequence[StepJob], finished: bool, now: datetime) -> dict[str, Any]:
    """``created_at`` (kept once set), ``started_at`` (the first claim of any step job),
    ``finished_at`` (when first seen finished) and ``duration_ms`` (from created to finished)."""
    created = wf.created_at or now
    ended = None
    if finished:
        ended = wf.finished_at if wf.finished_at and not wf.rerun_requested else now
    return {
        model.CREATED_AT: created,
        model.STARTED_AT: _first([j.created_at for j in jobs]),
        model.FINISHED_AT: ended,
        model.DURATION_MS: int((ended - created).total_seconds() * 1000) if ended else None,
    }


def diff(doc: Mapping[str, Any], desired: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The ``$set`` and ``$unset`` turning ``doc``'s fields into ``desired`` (``None``: absent)."""
    writes = {k: v for k, v in desired.items() if v is not None and doc.get(k) != v}
    removes = [k for k, v in desired.items() if v is None and k in doc]
    return writes, removes


def _first(values: Sequence[datetime | None]) -> datetime | None:
    found = [v for v in values if v is not None]
    return min(found) if found else None
