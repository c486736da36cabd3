"""``/api/workflows`` and ``/api/templates``: submit, read, list, cancel and re-run workflows;
store, read, list and run templates. The routes call ``reactor.workflows.client``, as the CLI's
``reactor workflow`` does; a definition is checked, its commands included, before it is written.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Path, Query, Response

from reactor.web.api import ApiParts
from reactor.web.api import encode as enc
from reactor.web.api.errors import ERROR_RESPONSES, ApiError, ErrorResponse
from reactor.web.api.jobs import MAX_PAGE, Cursor, decode_cursor, encode_cursor
from reactor.web.api.schemas import (
    NewWorkflow,
    TemplateIn,
    TemplateList,
    TemplateOut,
    TemplateRun,
    WorkflowChanged,
    WorkflowDetail,
    WorkflowOut,
    WorkflowPage,
    WorkflowStatusName,
)
from reactor.workflows import client as wf
from reactor.workflows import live, model

STEP_JOBS_SHOWN = 500
OCRD_STATES = {
    "queued": "QUEUED",
    "running": "RUNNING",
    "succeeded": "SUCCESS",
    "failed": "FAILED",
    "cancelled": "CANCELLED",
}
WorkflowId = Annotated[
    str, Path(min_length=1, max_length=1024, description="The workflow's workflow_id.")
]
TemplateName = Annotated[str, Path(min_length=1, max_length=200, pattern=r"^[^/]+$")]

Responses = dict[int | str, dict[str, Any]]
NOT_FOUND: Responses = {404: {"model": ErrorResponse, "description": "no such workflow"}}
CONFLICT: Responses = {
    409: {"model": ErrorResponse, "description": "the workflow's status does not allow it"}
}
TAKEN: Responses = {409: {"model": ErrorResponse, "description": "workflow_id taken"}}


def router(parts: ApiParts) -> APIRouter:
    api = APIRouter(prefix="/api/workflows", tags=["workflows"], responses=ERROR_RESPONSES)
    _submit_route(api, parts)
    _read_routes(api, parts)
    _action_routes(api, parts)
    return api


def templates_router(parts: ApiParts) -> APIRouter:
    api = APIRouter(prefix="/api/templates", tags=["templates"], responses=ERROR_RESPONSES)
    _template_routes(api, parts)
    _template_run_route(api, parts)
    return api


def shown(doc: Mapping[str, Any]) -> dict[str, Any]:
    """A workflow document as the API shows it: ``status`` never missing."""
    out = dict(enc.plain(doc))
    out.pop("_id", None)
    out[model.STATUS] = doc.get(model.STATUS) or model.WorkflowStatus.QUEUED.value
    return out


def steps_of(doc: Mapping[str, Any], states: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Each step's definition beside its state now (``pending`` until its jobs exist)."""
    out = []
    for step in doc.get(model.STEPS) or []:
        if not isinstance(step, Mapping):
            continue
        name = str(step.get(model.NAME))
        state = states.get(name)
        state = dict(enc.plain(state)) if isinstance(state, Mapping) else {}
        definition = {k: enc.plain(step.get(k)) for k in (model.COMMAND, model.FOR_EACH,
                                                        model.BATCH) if k in step}  # fmt: skip
        after = step.get(model.AFTER)
        out.append({**state, **definition, model.NAME: name,
                    model.AFTER: list(after) if isinstance(after, list) else [],
                    model.STATUS: state.get(model.STATUS) or "pending"})  # fmt: skip
    return out


def detail(
    doc: Mapping[str, Any], jobs: list[dict[str, Any]], states: Mapping[str, Any]
) -> dict[str, Any]:
    """The body of ``GET /api/workflows/{workflow_id}`` (``jobs``: one more than shown;
    ``states``: the steps' states now, ``live.read_states``)."""
    body = shown(doc)
    body[model.STATUS] = live.live_status(doc, states)
    workflow_id = str(doc.get(model.WORKFLOW_ID))
    return {
        "workflow": body,
        "ocrd_state": OCRD_STATES.get(body[model.STATUS], "QUEUED"),
        "steps": steps_of(doc, states),
        "jobs": [enc.plain(job) for job in jobs[:STEP_JOBS_SHOWN]],
        "more_jobs": len(jobs) > STEP_JOBS_SHOWN,
        "links": {"jobs": f"/api/jobs?limit={MAX_PAGE}", "self": _location(workflow_id)},
    }


def _location(workflow_id: str) -> str:
    return f"/api/workflows/{quote(workflow_id, safe='')}"


def _definition(new: NewWorkflow) -> dict[str, Any]:
    """The document ``new`` describes, with only the fields it gives."""
    steps = []
    for step in new.steps:
        fields = step.model_dump()
        steps.append({k: v for k, v in fields.items() if v is not None or k == model.ARGS})
    doc: dict[str, Any] = {
        model.WORKFLOW_ID: new.workflow_id or f"wf-{uuid.uuid4().hex[:16]}",
        model.STEPS: steps,
    }
    for key in (model.OUTPUT, model.CALLBACK_URL, model.PRIORITY):
        value = getattr(new, key)
        if value is not None:
            doc[key] = value
    return doc


async def _created(parts: ApiParts, workflow_id: str, response: Response) -> dict[str, Any]:
    found, _ = await wf.status(parts.db, workflow_id, workflows=parts.workflows, jobs=parts.jobs)
    response.headers["Location"] = _location(workflow_id)
    return {"workflow": shown(found or {model.WORKFLOW_ID: workflow_id})}


def _submit_route(api: APIRouter, parts: ApiParts) -> None:
    @api.post("", status_code=201, response_model=WorkflowChanged,
              dependencies=[parts.auth.writer], responses=TAKEN)  # fmt: skip
    async def submit(new: NewWorkflow, response: Response) -> dict[str, Any]:
        """Submit a workflow: checked (steps, references, commands) before it is written,
        422 ``invalid_workflow`` saying what is wrong."""
        workflow_id = await wf.submit(parts.db, _definition(new), workflows=parts.workflows,
                                      commands=parts.registry.has)  # fmt: skip
        return await _created(parts, workflow_id, response)


def _read_routes(api: APIRouter, parts: ApiParts) -> None:
    @api.get("", response_model=WorkflowPage, dependencies=[parts.auth.reader])
    async def list_workflows(
        status: WorkflowStatusName | None = None,
        limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
        cursor: Cursor = None,
    ) -> dict[str, Any]:
        """Workflows newest first, by status; follow ``next_cursor`` for older ones."""
        before = decode_cursor(cursor) if cursor else None
        found = await wf.list_workflows(parts.db, status=status, limit=limit, before=before,
                                        workflows=parts.workflows)  # fmt: skip
        more = len(found) == limit
        return {
            "workflows": [shown(doc) for doc in found],
            "next_cursor": encode_cursor(found[-1]["_id"]) if more else None,
        }

    @api.get("/{workflow_id}", response_model=WorkflowDetail, dependencies=[parts.auth.reader],
             responses=NOT_FOUND)  # fmt: skip
    async def get_workflow(workflow_id: WorkflowId) -> dict[str, Any]:
        """A workflow, its aggregated state now (also as OCR-D names it), its steps with their
        states now, and its step jobs."""
        found = await parts.db[parts.workflows].find_one({model.WORKFLOW_ID: workflow_id})
        if found is None:
            raise ApiError(404, "workflow_not_found", f"no workflow with workflow_id "
                           f"{workflow_id!r}")  # fmt: skip
        jobs = await wf.step_jobs(parts.db, workflow_id, limit=STEP_JOBS_SHOWN + 1,
                                  jobs=parts.jobs)  # fmt: skip
        states = await live.read_states(parts.db, parts.jobs, workflow_id,
                                        found.get(model.STEP_STATES))  # fmt: skip
        return detail(found, jobs, states)


def _action_routes(api: APIRouter, parts: ApiParts) -> None:
    @api.post("/{workflow_id}/cancel", response_model=WorkflowChanged,
              dependencies=[parts.auth.writer], responses={**NOT_FOUND, **CONFLICT})  # fmt: skip
    async def cancel(workflow_id: WorkflowId) -> dict[str, Any]:
        """Cancel an unfinished workflow: its queued and running steps are cancelled through
        their jobs, and no further step starts."""
        return {"workflow": shown(await wf.cancel(parts.db, workflow_id,
                                                  workflows=parts.workflows))}  # fmt: skip

    @api.post("/{workflow_id}/retry", response_model=WorkflowChanged,
              dependencies=[parts.auth.writer], responses={**NOT_FOUND, **CONFLICT})  # fmt: skip
    async def retry(workflow_id: WorkflowId) -> dict[str, Any]:
        """Run a finished failed or cancelled workflow again: its failed and cancelled steps
        and those after them; succeeded steps keep their results."""
        await wf.retry(parts.db, workflow_id, workflows=parts.workflows)
        found, _ = await wf.status(parts.db, workflow_id, workflows=parts.workflows,
                                   jobs=parts.jobs)  # fmt: skip
        return {"workflow": shown(found or {model.WORKFLOW_ID: workflow_id})}


def _template_routes(api: APIRouter, parts: ApiParts) -> None:
    collection = parts.templates

    @api.get("", response_model=TemplateList, dependencies=[parts.auth.reader])
    async def list_templates() -> dict[str, Any]:
        """Stored templates, then the shipped ones they do not override."""
        found = await wf.list_templates(parts.db, templates_collection=collection)
        return {"templates": [enc.plain(doc) for doc in found]}

    @api.get("/{name}", response_model=TemplateOut, dependencies=[parts.auth.reader],
             responses=NOT_FOUND)  # fmt: skip
    async def get_template(name: TemplateName) -> dict[str, Any]:
        """A stored template by name, else a shipped one."""
        return dict(enc.plain(await wf.get_template(parts.db, name,
                                                    templates_collection=collection)))  # fmt: skip

    @api.put("/{name}", response_model=TemplateOut, dependencies=[parts.auth.writer])
    async def put_template(name: TemplateName, template: TemplateIn) -> dict[str, Any]:
        """Store a template under ``name`` (replacing one of that name); its steps are checked
        with every parameter set to a placeholder first."""
        if template.name is not None and template.name != name:
            raise ApiError(422, "invalid_workflow", f"the body names template {template.name!r}"
                           f", the path {name!r}")  # fmt: skip
        doc = {k: v for k, v in template.model_dump().items() if v is not None}
        await wf.put_template(parts.db, {**doc, model.TEMPLATE_NAME: name},
                              templates_collection=collection)  # fmt: skip
        return dict(enc.plain(await wf.get_template(parts.db, name,
                                                    templates_collection=collection)))  # fmt: skip


def _template_run_route(api: APIRouter, parts: ApiParts) -> None:
    @api.post("/{name}/run", status_code=201, response_model=WorkflowChanged,
              dependencies=[parts.auth.writer], responses={**NOT_FOUND, **TAKEN})  # fmt: skip
    async def run(name: TemplateName, run: TemplateRun, response: Response) -> dict[str, Any]:
        """Run a template with ``params`` as a new workflow."""
        workflow_id = await wf.run_template(
            parts.db, name, run.params, workflow_id=run.workflow_id,
            callback_url=run.callback_url, workflows=parts.workflows,
            templates_collection=parts.templates, commands=parts.registry.has,
        )  # fmt: skip
        return await _created(parts, workflow_id, response)


__all__ = ["WorkflowOut", "detail", "router", "templates_router"]
