"""Workflows, the link on their step jobs, and templates: the document shapes.

A workflow as clients write it, in ``workflows`` (only ``workflow_id`` and ``steps`` are
required)::

    {"workflow_id": "scan-42",
     "steps": [{"name": "split", "command": "split_pages", "args": {"document": "scan.tif"}},
               {"name": "ocr", "command": "ocr_pages", "after": ["split"],
                "for_each": {"$result": "split.pages"}, "batch": 4,
                "args": {"images": {"$item": ""}}},
               {"name": "join", "command": "join_pages", "after": ["ocr"],
                "args": {"texts": {"$result": "ocr.text"}}}],
     "output": {"$result": "join"}, "callback_url": "https://...", "priority": 0,
     "cancel_requested": true}                 # to cancel; "status": "queued" re-runs it

Fields the reactor manages on the workflow: ``status``, ``run``, ``version`` (+1 on every write
of the reactor's), ``step_states`` (per step: ``status``, ``jobs``, ``elements``, ``done``,
``counts``, ``started_at``, ``finished_at``, ``error``), ``progress`` (``steps_done``,
``steps_total``, ``elements_done``, ``elements_total``), ``created_at``, ``started_at``,
``finished_at``, ``duration_ms``, ``result`` (``output`` resolved), ``error`` (``{type,
message, step, job_id}``), ``callback`` (the delivery, ``reactor.callbacks.model``) and
``handled_event`` (which change event a reactor took on).

A step job is an ordinary job whose ``job_id`` is ``<workflow_id>.<step>`` (one job) or
``<workflow_id>.<step>.<i>`` (the ``i``-th job of a ``for_each`` step, from 0), with the link::

    "workflow": {"workflow_id", "step", "index", "of", "first", "count", "upstream", "closed"}

``index`` is ``null`` for a one-job step; ``of`` is how many jobs the step has, ``first`` and
``count`` which elements this job holds, ``upstream`` the steps whose directories it may read and
``closed`` the steps whose directories it may not. A final status of a step job also sets
``step_final: {workflow_id, owner, claim_id}`` (the change event that moves its workflow on).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from reactor import model

# The workflow document.
WORKFLOW_ID = "workflow_id"
STEPS = "steps"
OUTPUT = "output"
CALLBACK_URL = model.CALLBACK_URL
PRIORITY = model.PRIORITY
CANCEL_REQUESTED = model.CANCEL_REQUESTED
CANCEL_REQUESTED_AT = model.CANCEL_REQUESTED_AT
TEMPLATE = "template"  # {name, params}: the template it was made from, for people
STATUS = model.STATUS
RUN = model.RUN
VERSION = "version"
STEP_STATES = "step_states"
PROGRESS = model.PROGRESS
CREATED_AT = model.CREATED_AT
STARTED_AT = model.STARTED_AT
FINISHED_AT = model.FINISHED_AT
DURATION_MS = "duration_ms"
RESULT = model.RESULT
ERROR = model.ERROR
CALLBACK = "callback"
HANDLED_EVENT = "handled_event"

# A step in ``steps``.
NAME = "name"
COMMAND = model.COMMAND
ARGS = model.ARGS
AFTER = "after"
FOR_EACH = "for_each"
BATCH = "batch"

# The link on a step job, and the change-event marker of its final status.
LINK = model.WORKFLOW
LINK_WORKFLOW_ID = f"{LINK}.{WORKFLOW_ID}"
STEP_FINAL = "step_final"

# Templates, in ``workflow_templates``.
TEMPLATE_NAME = "name"
TEMPLATE_PARAMS = "params"
TEMPLATE_DESCRIPTION = "description"


class WorkflowStatus(StrEnum):
    """A workflow's aggregated state (OCR-D's rule, see ``decide.workflow_status``)."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


class StepStatus(StrEnum):
    """A step's state: ``pending`` until its job(s) exist, then its jobs' aggregate."""

    PENDING = "pending"
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


TERMINAL = frozenset({"succeeded", "failed", "cancelled"})
JOB_STATUSES = tuple(s.value for s in model.Status)


@dataclass(frozen=True)
class Link:
    """A step job's link to its workflow (the ``workflow`` field)."""

    workflow_id: str
    step: str
    index: int | None = None
    of: int = 1
    first: int = 0
    count: int = 1
    upstream: tuple[str, ...] = ()
    closed: tuple[str, ...] = ()

    def to_doc(self) -> dict[str, Any]:
        return {
            WORKFLOW_ID: self.workflow_id,
            "step": self.step,
            "index": self.index,
            "of": self.of,
            "first": self.first,
            "count": self.count,
            "upstream": list(self.upstream),
            "closed": list(self.closed),
        }

    @classmethod
    def from_doc(cls, doc: Any) -> Link | None:
        """The link of a job document's ``workflow`` field; ``None`` when absent or malformed."""
        if not isinstance(doc, Mapping):
            return None
        workflow_id, step = doc.get(WORKFLOW_ID), doc.get("step")
        if not (isinstance(workflow_id, str) and workflow_id and isinstance(step, str) and step):
            return None
        index = doc.get("index")
        return cls(
            workflow_id,
            step,
            index if _count(index) is not None else None,
            _count_or(doc.get("of"), 1),
            _count_or(doc.get("first"), 0),
            _count_or(doc.get("count"), 1),
            _names(doc.get("upstream")),
            _names(doc.get("closed")),
        )


@dataclass(frozen=True)
class StepJob:
    """A step job as the advancing reactor reads it (a projection of the job document)."""

    job_id: str
    link: Link
    status: str
    run: int = 1
    cancel_requested: bool = False
    created_at: datetime | None = None
    finished_at: datetime | None = None

    @property
    def final(self) -> bool:
        return self.status in TERMINAL

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any]) -> StepJob | None:
        link = Link.from_doc(doc.get(LINK))
        job_id = doc.get(model.JOB_ID)
        if link is None or not isinstance(job_id, str):
            return None
        status = doc.get(model.STATUS) or model.Status.QUEUED.value
        run = doc.get(model.RUN)
        return cls(
            job_id,
            link,
            status if status in JOB_STATUSES else model.Status.FAILED.value,
            run if isinstance(run, int) and not isinstance(run, bool) else 1,
            doc.get(model.CANCEL_REQUESTED) is True,
            _date(doc.get(model.CREATED_AT)),
            _date(doc.get(model.FINISHED_AT)),
        )


STEP_JOB_PROJECTION = {
    model.JOB_ID: 1,
    LINK: 1,
    model.STATUS: 1,
    model.RUN: 1,
    model.CANCEL_REQUESTED: 1,
    model.CREATED_AT: 1,
    model.FINISHED_AT: 1,
}


def step_job_id(workflow_id: str, step: str, index: int | None) -> str:
    """``<workflow_id>.<step>`` or ``<workflow_id>.<step>.<index>``: one id per step element.

    No two (workflow, step, index) share an id: a step name starts with a letter and has no
    dot, an index is decimal, so reading an id from its right end finds them again.
    """
    base = f"{workflow_id}.{step}"
    return base if index is None else f"{base}.{index}"


def step_final(workflow_id: str, owner: str, claim_id: Any) -> dict[str, Any]:
    """The ``step_final`` marker a step job's final status carries (the claim makes each new)."""
    return {WORKFLOW_ID: workflow_id, "owner": owner, "claim_id": claim_id}


def step_final_of(fields: Mapping[str, Any]) -> tuple[str, str] | None:
    """``(workflow_id, owner)`` from a change event's updated fields, if it marks one."""
    marker = fields.get(STEP_FINAL)
    if not isinstance(marker, Mapping):
        return None
    workflow_id, owner = marker.get(WORKFLOW_ID), marker.get("owner")
    if isinstance(workflow_id, str) and isinstance(owner, str):
        return workflow_id, owner
    return None


def _count(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        return None
    return value


def _count_or(value: Any, default: int) -> int:
    found = _count(value)
    return default if found is None else found


def _names(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list):
        return ()
    return tuple(v for v in value if isinstance(v, str))


def _date(value: Any) -> datetime | None:
    if not isinstance(value, datetime):
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


@dataclass(frozen=True)
class Workflow:
    """A stored workflow as the advancing reactor reads it (``doc``: the whole document)."""

    doc: Mapping[str, Any]

    @property
    def doc_id(self) -> Any:
        return self.doc.get(model.ID)

    @property
    def workflow_id(self) -> str:
        value = self.doc.get(WORKFLOW_ID)
        return value if isinstance(value, str) else ""

    @property
    def status(self) -> str | None:
        value = self.doc.get(STATUS)
        return value if isinstance(value, str) else None

    @property
    def run(self) -> int:
        value = self.doc.get(RUN)
        return value if isinstance(value, int) and not isinstance(value, bool) else 1

    @property
    def version(self) -> int | None:
        value = self.doc.get(VERSION)
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    @property
    def cancel_requested(self) -> bool:
        return self.doc.get(CANCEL_REQUESTED) is True

    @property
    def cancelling(self) -> bool:
        """Cancelled on request, and not asked to run again since."""
        return self.cancel_requested and not self.rerun_requested

    @property
    def created_at(self) -> datetime | None:
        return _date(self.doc.get(CREATED_AT))

    @property
    def finished_at(self) -> datetime | None:
        return _date(self.doc.get(FINISHED_AT))

    @property
    def rerun_requested(self) -> bool:
        """A client set a finished workflow back to ``queued``: run its failed steps again."""
        return self.status == WorkflowStatus.QUEUED.value and self.finished_at is not None
