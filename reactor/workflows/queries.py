"""The filters and updates of workflows and their step jobs: the query half of ``model.py``.

Every write that advances a workflow is safe to repeat: step jobs are inserted under the unique
``job_id`` index (an insert that finds its id taken is a duplicate, ignored); a re-queue matches
only the run that ended; a cancel only an unfinished job; and the workflow's own fields are
written with a compare-and-set on ``version`` (and on the ``status`` and ``cancel_requested`` a
client may have changed meanwhile), so a decision made from an older read never overwrites a
newer one.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from reactor import model as job_model
from reactor.callbacks import model as callbacks
from reactor.workflows import model
from reactor.workflows.model import Workflow

Doc = dict[str, Any]
Sort = list[tuple[str, int]]

TERMINAL = sorted(model.TERMINAL)
LINK_STEP = f"{model.LINK}.step"

INDEXES: dict[str, tuple[Sort, Doc]] = {
    "workflow_id_unique": (
        [(model.WORKFLOW_ID, 1)],
        {"unique": True, "partialFilterExpression": {model.WORKFLOW_ID: {"$type": "string"}}},
    ),
    "unfinished": ([(model.FINISHED_AT, 1), (model.STATUS, 1)], {}),
    # GET /api/workflows?status=: newest first within a status (without one, the _id index).
    "status_recent": ([(model.STATUS, 1), ("_id", -1)], {}),
    "callback_due": (
        [(callbacks.DUE_AT, 1)],
        {"partialFilterExpression": {callbacks.STATE: callbacks.DeliveryState.PENDING.value}},
    ),
}
TEMPLATE_INDEXES: dict[str, tuple[Sort, Doc]] = {
    "name_unique": ([(model.TEMPLATE_NAME, 1)], {"unique": True}),
}
# On jobs, beside ``reactor.queries.INDEXES``.
JOB_INDEXES: dict[str, tuple[Sort, Doc]] = {
    "workflow_steps": (
        [(model.LINK_WORKFLOW_ID, 1)],
        {"partialFilterExpression": {model.LINK_WORKFLOW_ID: {"$type": "string"}}},
    ),
    "callback_due": INDEXES["callback_due"],
}


# Listing workflows, newest first by insertion (the ``_id`` index), and the fields shown.
NEWEST_FIRST: Sort = [(job_model.ID, -1)]
LISTING_FIELDS: Doc = {
    field: 1
    for field in (model.WORKFLOW_ID, model.STATUS, model.RUN, model.PROGRESS, model.CREATED_AT,
                  model.FINISHED_AT, model.TEMPLATE)
}  # fmt: skip


def listing(status: str | None, before: Any) -> Doc:
    """Workflows of one status (any: ``None``) inserted before the one whose ``_id`` is
    ``before`` (any: ``None``), for :data:`NEWEST_FIRST` pages."""
    query: Doc = {}
    if status is not None:
        query[model.STATUS] = status
    if before is not None:
        query["_id"] = {"$lt": before}
    return query


def by_id(workflow_id: str) -> Doc:
    return {model.WORKFLOW_ID: workflow_id}


def step_jobs(workflow_id: str) -> Doc:
    return {model.LINK_WORKFLOW_ID: workflow_id}


def step_counts(workflow_id: str) -> list[Doc]:
    """A workflow's step jobs grouped by step and status: ``jobs``, the ``elements`` they hold
    and the most jobs the step will have (``of``); ``_id`` is ``{step, status}``."""
    return [
        {"$match": step_jobs(workflow_id)},
        {
            "$group": {
                "_id": {"step": f"${LINK_STEP}", "status": f"${job_model.STATUS}"},
                "jobs": {"$sum": 1},
                "elements": {"$sum": f"${model.LINK}.count"},
                "of": {"$max": f"${model.LINK}.of"},
            }
        },
    ]


def foreign(workflow_id: str, job_ids: list[str]) -> Doc:
    """Jobs holding these ids that are not steps of this workflow."""
    return {job_model.JOB_ID: {"$in": job_ids}, model.LINK_WORKFLOW_ID: {"$ne": workflow_id}}


def requeue(job_id: str, run: int) -> tuple[Doc, Doc]:
    """Queue a failed or cancelled step job again (its next run), only if that run ended so."""
    return (
        {
            job_model.JOB_ID: job_id,
            job_model.STATUS: {"$in": ["failed", "cancelled"]},
            job_model.RUN: run,
        },
        {
            "$set": {job_model.STATUS: job_model.Status.QUEUED.value},
            "$unset": {job_model.CANCEL_REQUESTED: "", job_model.CANCEL_REQUESTED_AT: ""},
        },
    )


def cancel(job_ids: list[str], now: datetime) -> tuple[Doc, Doc]:
    """Ask unfinished step jobs to cancel (the job's own cancel: running ones are stopped)."""
    return (
        {job_model.JOB_ID: {"$in": job_ids}, job_model.STATUS: {"$nin": TERMINAL}},
        {"$set": {job_model.CANCEL_REQUESTED: True}, "$min": {job_model.CANCEL_REQUESTED_AT: now}},
    )


def unchanged_since(wf: Workflow) -> Doc:
    """The workflow as the decision read it: same version, status and cancel request."""
    doc = wf.doc
    return {
        job_model.ID: wf.doc_id,
        model.VERSION: doc.get(model.VERSION, {"$exists": False}),
        model.STATUS: doc.get(model.STATUS),  # None also matches a missing status
        model.CANCEL_REQUESTED: True if wf.cancel_requested else {"$ne": True},
    }


def state_update(wf: Workflow, set_fields: dict[str, Any], unset: tuple[str, ...]) -> Doc:
    """The decision's fields, and the next ``version`` (a client's non-number starts over)."""
    version = wf.version
    update: Doc = {"$set": {model.VERSION: version + 1 if version is not None else 1}}
    update["$set"].update(set_fields)
    if unset:
        update["$unset"] = dict.fromkeys(unset, "")
    return update


def unfinished() -> Doc:
    """Workflows that may need advancing: not finished, or asked to run again."""
    return {"$or": [{model.FINISHED_AT: None}, {model.STATUS: model.WorkflowStatus.QUEUED.value}]}


def handle_event(doc_id: Any, token: str) -> tuple[Doc, Doc]:
    """Take on one change event of a workflow: only the first reactor to ask matches."""
    return (
        {job_model.ID: doc_id, model.HANDLED_EVENT: {"$ne": token}},
        {"$set": {model.HANDLED_EVENT: token}},
    )


def fail_malformed(doc_id: Any, message: str, now: datetime) -> tuple[Doc, Doc]:
    """A workflow document without a usable ``workflow_id``: failed, by its ``_id``."""
    error = {"type": "InvalidWorkflow", "message": message, "step": None, "job_id": None}
    return (
        {job_model.ID: doc_id, model.STATUS: None},
        {
            "$set": {
                model.STATUS: model.WorkflowStatus.FAILED.value,
                model.ERROR: error,
                model.FINISHED_AT: now,
                model.CREATED_AT: now,
            }
        },
    )
