"""The client side of workflows: submit, run a template, cancel, re-run, read, wait (CLI, tests).

Like ``reactor.client`` for jobs, these only write documents, each request one atomic update
whose filter checks the workflow's state; a running reactor does the rest. A definition is
checked before it is inserted (all but the commands, which only a reactor knows), so a mistake
is reported at once; a reactor checks it again, commands included.

Waiting watches ``workflows`` with a change stream opened before the workflow is read, so an
end written between the two is never missed; nothing polls.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio
import yaml
from pymongo import ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from reactor import client as job_client
from reactor import model as job_model
from reactor.errors import (
    DuplicateWorkflow,
    InvalidWorkflow,
    WorkflowNotFound,
    WorkflowStateConflict,
)
from reactor.workflows import definition, model, queries, templates
from reactor.workflows.definition import Commands

Doc = dict[str, Any]
WORKFLOWS, TEMPLATES, JOBS = "workflows", "workflow_templates", "jobs"
RERUNNABLE = [model.WorkflowStatus.FAILED.value, model.WorkflowStatus.CANCELLED.value]


def load_file(path: Path) -> Doc:
    """A workflow (or template) document from a ``.json``, ``.yaml`` or ``.yml`` file."""
    text = path.read_text(encoding="utf-8")
    try:
        doc = yaml.safe_load(text) if path.suffix in (".yaml", ".yml") else json.loads(text)
    except (ValueError, yaml.YAMLError) as exc:
        raise InvalidWorkflow(f"{path} cannot be read: {exc}") from None
    if not isinstance(doc, dict):
        raise InvalidWorkflow(f"{path} does not hold a document")
    return doc


async def submit(
    db: AsyncDatabase[Doc],
    doc: Mapping[str, Any],
    *,
    workflows: str = WORKFLOWS,
    commands: Commands | None = None,
) -> str:
    """Check and insert a workflow; return its ``workflow_id``.

    :class:`InvalidWorkflow` says what is wrong with it (its commands too, given ``commands``:
    is this one served?); :class:`DuplicateWorkflow` when the id is taken.
    """
    definition.of_workflow(doc, commands=commands)
    _check_storable(doc)
    workflow_id = str(doc[model.WORKFLOW_ID])
    if await db[workflows].find_one({model.WORKFLOW_ID: workflow_id}, {"_id": 1}) is not None:
        raise _duplicate(workflow_id)
    try:
        await db[workflows].insert_one({**doc, model.CREATED_AT: datetime.now(UTC)})
    except DuplicateKeyError:
        raise _duplicate(workflow_id) from None
    return workflow_id


async def run_template(
    db: AsyncDatabase[Doc],
    name: str,
    params: Mapping[str, Any] | None = None,
    *,
    workflow_id: str | None = None,
    callback_url: str | None = None,
    workflows: str = WORKFLOWS,
    templates_collection: str = TEMPLATES,
    commands: Commands | None = None,
) -> str:
    """Run a stored (or shipped) template with ``params`` as a new workflow; its id."""
    template = await get_template(db, name, templates_collection=templates_collection)
    doc = templates.instantiate(template, params or {}, workflow_id)
    if callback_url is not None:
        doc[model.CALLBACK_URL] = callback_url
    return await submit(db, doc, workflows=workflows, commands=commands)


async def get_template(
    db: AsyncDatabase[Doc], name: str, *, templates_collection: str = TEMPLATES
) -> Doc:
    """A stored template by name, else a shipped one (:class:`WorkflowNotFound`)."""
    found = await db[templates_collection].find_one({model.TEMPLATE_NAME: name}, {"_id": 0})
    found = found or templates.builtin(name)
    if found is None:
        raise WorkflowNotFound(f"no template named {name!r} (see: reactor workflow template list)")
    return found


async def put_template(
    db: AsyncDatabase[Doc], doc: Mapping[str, Any], *, templates_collection: str = TEMPLATES
) -> str:
    """Store a template under its ``name`` (replacing one of that name); its name.

    Its steps are checked with every parameter set to a placeholder first.
    """
    name = doc.get(model.TEMPLATE_NAME)
    if not isinstance(name, str) or not name:
        raise InvalidWorkflow("a template needs a name: a non-empty string")
    declared = doc.get(model.TEMPLATE_PARAMS) or {}
    placeholders = dict.fromkeys(declared if isinstance(declared, Mapping) else (), "x")
    trial = templates.instantiate(doc, placeholders, "template-check")
    definition.parse(trial[model.STEPS], trial.get(model.OUTPUT))
    _check_storable(doc)
    await db[templates_collection].replace_one({model.TEMPLATE_NAME: name}, dict(doc), upsert=True)
    return name


async def list_templates(
    db: AsyncDatabase[Doc], *, templates_collection: str = TEMPLATES
) -> list[Doc]:
    """Stored templates, then shipped ones not overridden: ``{name, description, source}``."""
    stored = [
        {**d, "source": "stored"}
        async for d in db[templates_collection]
        .find({}, {"_id": 0, model.TEMPLATE_NAME: 1, model.TEMPLATE_DESCRIPTION: 1})
        .sort(model.TEMPLATE_NAME, 1)
    ]
    names = {d.get(model.TEMPLATE_NAME) for d in stored}
    shipped = [templates.builtin(n) or {} for n in templates.builtin_names() if n not in names]
    return stored + [
        {
            model.TEMPLATE_NAME: t.get(model.TEMPLATE_NAME),
            model.TEMPLATE_DESCRIPTION: t.get(model.TEMPLATE_DESCRIPTION),
            "source": "shipped",
        }
        for t in shipped
    ]


async def cancel(db: AsyncDatabase[Doc], workflow_id: str, *, workflows: str = WORKFLOWS) -> Doc:
    """Ask for a workflow's cancellation: its running and queued steps are cancelled through
    their jobs, and nothing more is created. :class:`WorkflowStateConflict` once finished."""
    after = await db[workflows].find_one_and_update(
        {model.WORKFLOW_ID: workflow_id, model.FINISHED_AT: None},
        {
            "$set": {model.CANCEL_REQUESTED: True},
            "$min": {model.CANCEL_REQUESTED_AT: datetime.now(UTC)},
        },
        return_document=ReturnDocument.AFTER,
    )
    if after is None:
        found = await _existing(db, workflow_id, workflows)
        raise WorkflowStateConflict(
            f"workflow {workflow_id!r} is already {found.get(model.STATUS)}: only an unfinished "
            "workflow can be cancelled"
        )
    return after


async def retry(db: AsyncDatabase[Doc], workflow_id: str, *, workflows: str = WORKFLOWS) -> Doc:
    """Run a failed or cancelled workflow again: only its failed and cancelled steps, and the
    steps after them; succeeded steps keep their results. Returns the workflow before."""
    before = await db[workflows].find_one_and_update(
        {
            model.WORKFLOW_ID: workflow_id,
            model.STATUS: {"$in": RERUNNABLE},
            model.FINISHED_AT: {"$ne": None},
        },
        {"$set": {model.STATUS: model.WorkflowStatus.QUEUED.value}},
        return_document=ReturnDocument.BEFORE,
    )
    if before is None:
        found = await _existing(db, workflow_id, workflows)
        state = found.get(model.STATUS) or "queued"
        ended = "finished" if found.get(model.FINISHED_AT) else "still running"
        raise WorkflowStateConflict(
            f"workflow {workflow_id!r} is {state} ({ended}): only a failed or cancelled "
            "workflow that has finished can be run again"
        )
    return before


async def status(
    db: AsyncDatabase[Doc],
    workflow_id: str,
    *,
    workflows: str = WORKFLOWS,
    jobs: str = JOBS,
    limit: int = 0,
) -> tuple[Doc | None, list[Doc]]:
    """The workflow document and its step jobs (``job_id`` order; the first ``limit`` of them
    when it is not 0), either may be missing."""
    found = await db[workflows].find_one({model.WORKFLOW_ID: workflow_id})
    steps = db[jobs].find({model.LINK_WORKFLOW_ID: workflow_id}, {job_model.ARGS: 0}, limit=limit)
    return found, [doc async for doc in steps.sort(job_model.JOB_ID, 1)]


async def list_workflows(
    db: AsyncDatabase[Doc],
    *,
    status: str | None = None,
    limit: int = 20,
    before: Any = None,
    workflows: str = WORKFLOWS,
) -> list[Doc]:
    """Workflows newest first (by insertion), optionally of one status, inserted before the one
    whose ``_id`` is ``before`` (the next page); without their steps' definitions."""
    query = queries.listing(status, before)
    found = db[workflows].find(query, {model.STEPS: 0}, sort=queries.NEWEST_FIRST, limit=limit)
    return [doc async for doc in found]


STEP_JOB_FIELDS = {
    job_model.JOB_ID: 1,
    job_model.STATUS: 1,
    job_model.ATTEMPT: 1,
    job_model.RUN: 1,
    f"{model.LINK}.step": 1,
    f"{model.LINK}.index": 1,
    job_model.STARTED_AT: 1,
    job_model.FINISHED_AT: 1,
    f"{job_model.ERROR}.type": 1,
    "_id": 0,
}


async def step_jobs(
    db: AsyncDatabase[Doc], workflow_id: str, *, limit: int, jobs: str = JOBS
) -> list[Doc]:
    """At most ``limit`` of a workflow's step jobs in ``job_id`` order, their state only."""
    found = db[jobs].find({model.LINK_WORKFLOW_ID: workflow_id}, STEP_JOB_FIELDS)
    return [doc async for doc in found.sort(job_model.JOB_ID, 1).limit(limit)]


async def recent(
    db: AsyncDatabase[Doc], *, limit: int = 20, workflows: str = WORKFLOWS
) -> list[Doc]:
    """The newest workflows first (by insertion: the ``_id`` index serves it), without their
    steps' definitions, states and results."""
    cursor = db[workflows].find({}, queries.LISTING_FIELDS, sort=queries.NEWEST_FIRST, limit=limit)
    return [doc async for doc in cursor]


def run_of(doc: Mapping[str, Any] | None) -> int:
    value = (doc or {}).get(model.RUN)
    return value if isinstance(value, int) and not isinstance(value, bool) else 1


async def wait(
    db: AsyncDatabase[Doc],
    workflow_id: str,
    *,
    timeout_s: float,
    workflows: str = WORKFLOWS,
    min_run: int = 1,
) -> Doc:
    """The workflow once finished (run ``min_run`` or later); ``TimeoutError`` past the bound."""

    def done(doc: Doc | None) -> bool:
        return bool(doc and doc.get(model.FINISHED_AT) and run_of(doc) >= min_run)

    pipeline = [{"$match": {f"fullDocument.{model.WORKFLOW_ID}": workflow_id}}]
    with anyio.fail_after(timeout_s):
        async with await db[workflows].watch(pipeline, full_document="updateLookup") as stream:
            doc = await db[workflows].find_one({model.WORKFLOW_ID: workflow_id})
            while not done(doc):
                change = await stream.next()
                doc = change.get("fullDocument")
    assert doc is not None
    return doc


async def _existing(db: AsyncDatabase[Doc], workflow_id: str, workflows: str) -> Doc:
    found = await db[workflows].find_one({model.WORKFLOW_ID: workflow_id})
    if found is None:
        raise WorkflowNotFound(f"no workflow with workflow_id {workflow_id!r}")
    return found


def _check_storable(doc: Mapping[str, Any]) -> None:
    """:class:`InvalidWorkflow` unless ``doc`` encodes as BSON (checked before it is sent)."""
    job_client.check_storable(doc, what="the document", error=InvalidWorkflow)


def _duplicate(workflow_id: str) -> DuplicateWorkflow:
    return DuplicateWorkflow(
        f"a workflow with workflow_id {workflow_id!r} already exists (see: reactor status "
        f"{workflow_id}; to run its failed steps again: reactor workflow retry {workflow_id})"
    )
