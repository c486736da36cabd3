"""``/api/jobs``: submit, read, list, cancel and retry jobs, and read a job's own log."""

# No ``from __future__ import annotations`` here: the body's type is built per reactor (its
# commands) and put in ``submit``'s annotations, where FastAPI must find the class itself.
import base64
import binascii
from typing import Annotated, Any, Literal
from urllib.parse import quote

import bson
from fastapi import APIRouter, Path, Query, Response
from pydantic import Field, create_model

from reactor import client, model
from reactor.web.api import ApiParts
from reactor.web.api import encode as enc
from reactor.web.api.errors import ERROR_RESPONSES, ApiError, ErrorResponse
from reactor.web.api.schemas import (
    JobChanged,
    JobDetail,
    JobOut,
    JobPage,
    LogPage,
    NewJob,
    StatusName,
)

MAX_PAGE = 200
MAX_LOG_LINES = 5000
Cursor = Annotated[
    str | None,
    Query(max_length=2000, pattern=r"^[A-Za-z0-9_-]*$",
          description="next_cursor of the previous page (opaque)"),
]  # fmt: skip
JobId = Annotated[str, Path(min_length=1, max_length=1024, description="The job's job_id.")]

Responses = dict[int | str, dict[str, Any]]
NOT_FOUND: Responses = {404: {"model": ErrorResponse, "description": "no job with that job_id"}}
CONFLICT: Responses = {
    409: {"model": ErrorResponse, "description": "the job's status does not allow it"}
}


def encode_cursor(doc_id: Any) -> str:
    return base64.urlsafe_b64encode(bson.encode({"_id": doc_id})).decode().rstrip("=")


def decode_cursor(cursor: str) -> Any:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        return bson.decode(raw)["_id"]
    except (binascii.Error, ValueError, KeyError, bson.errors.BSONError, IndexError) as exc:
        raise ApiError(422, "invalid", f"cursor is not one this API gave out ({exc})") from None


def for_commands(names: list[str]) -> type[NewJob]:
    """The body of ``POST /api/jobs`` with ``command`` one of this reactor's commands."""
    if not names:
        return NewJob
    command = (Literal[tuple(names)], Field(description="A command of GET /api/handlers."))
    model: type[NewJob] = create_model("NewJob", __base__=NewJob, command=command)  # type: ignore[arg-type]
    return model


def router(parts: ApiParts) -> APIRouter:
    api = APIRouter(prefix="/api/jobs", tags=["jobs"], responses=ERROR_RESPONSES)
    _submit_route(api, parts)
    _read_routes(api, parts)
    _action_routes(api, parts)
    return api


def _submit_route(api: APIRouter, parts: ApiParts) -> None:
    db, jobs, results = parts.db, parts.jobs, parts.results

    async def submit(new: NewJob, response: Response) -> dict[str, Any]:
        """Submit a job (args checked against the handler's signature before anything is
        written)."""
        client.check_args(parts.registry, new.command, new.args)
        key = await client.submit(db, new.command, new.args, job_id=new.job_id, jobs=jobs,
                                  priority=new.priority, run_at=new.run_at)  # fmt: skip
        job, _ = await client.job_status(db, key, jobs=jobs, results=results)
        response.headers["Location"] = f"/api/jobs/{quote(key, safe='')}"
        return enc.job(job or client.new_job(new.command, new.args, key))

    # The body names this reactor's commands (an enum in the OpenAPI document).
    submit.__annotations__["new"] = for_commands(parts.registry.names())
    taken: Responses = {409: {"model": ErrorResponse, "description": "job_id taken"}}
    api.post("", status_code=201, response_model=JobOut, dependencies=[parts.auth.writer],
             responses=taken)(submit)  # fmt: skip


def _read_routes(api: APIRouter, parts: ApiParts) -> None:
    db, jobs, results = parts.db, parts.jobs, parts.results

    @api.get("", response_model=JobPage, dependencies=[parts.auth.reader])
    async def list_jobs(
        status: StatusName | None = None,
        command: Annotated[str | None, Query(max_length=200)] = None,
        limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
        cursor: Cursor = None,
    ) -> dict[str, Any]:
        """Jobs newest first, by status and command; follow ``next_cursor`` for older ones."""
        before = decode_cursor(cursor) if cursor else None
        found = await client.list_jobs(db, status=status, command=command, limit=limit,
                                       jobs=jobs, before=before)  # fmt: skip
        more = len(found) == limit
        return {
            "jobs": [enc.job(doc) for doc in found],
            "next_cursor": encode_cursor(found[-1][model.ID]) if more else None,
        }

    @api.get("/{job_id}", response_model=JobDetail, dependencies=[parts.auth.reader],
             responses=NOT_FOUND)  # fmt: skip
    async def get_job(job_id: JobId) -> dict[str, Any]:
        """A job, its latest result, its progress and its earlier runs."""
        job, result = await client.job_status(db, job_id, jobs=jobs, results=results)
        if job is None and result is None:
            raise ApiError(404, "job_not_found", f"no job with job_id {job_id!r}")
        return detail(job_id, job, result)

    @api.get("/{job_id}/log", response_model=LogPage, dependencies=[parts.auth.reader],
             responses=NOT_FOUND)  # fmt: skip
    async def log(
        job_id: JobId,
        run: Annotated[int | None, Query(ge=1, le=model.MAX_ATTEMPT)] = None,
        after: Annotated[int, Query(ge=0, le=10**9)] = 0,
        limit: Annotated[int, Query(ge=1, le=MAX_LOG_LINES)] = 1000,
    ) -> dict[str, Any]:
        """What the job's handler logged and printed in one run (its latest by default)."""
        shown, lines, next_line = await client.job_log(
            db, parts.jobs_root, job_id, run=run, after=after, limit=limit, jobs=jobs
        )
        return {"job_id": job_id, "run": shown, "lines": enc.plain(lines), "next_line": next_line}


def _action_routes(api: APIRouter, parts: ApiParts) -> None:
    db, jobs, results = parts.db, parts.jobs, parts.results

    @api.post("/{job_id}/cancel", response_model=JobChanged, dependencies=[parts.auth.writer],
              responses={**NOT_FOUND, **CONFLICT})  # fmt: skip
    async def cancel(job_id: JobId) -> dict[str, Any]:
        """Ask a queued or running job to stop (the reactor running it records ``cancelled``)."""
        return {"job": enc.job(await client.cancel(db, job_id, jobs=jobs))}

    @api.post("/{job_id}/retry", response_model=JobChanged, dependencies=[parts.auth.writer],
              responses={**NOT_FOUND, **CONFLICT})  # fmt: skip
    async def retry(job_id: JobId) -> dict[str, Any]:
        """Queue a finished job again: its next run starts."""
        await client.retry(db, job_id, jobs=jobs)
        job, _ = await client.job_status(db, job_id, jobs=jobs, results=results)
        return {"job": enc.job(job or {model.JOB_ID: job_id})}


def detail(
    job_id: str, job: dict[str, Any] | None, result: dict[str, Any] | None
) -> dict[str, Any]:
    """The body of ``GET /api/jobs/{job_id}`` (also the dashboard's job page)."""
    shown = enc.job(job) if job is not None else {model.JOB_ID: job_id, "status": "unknown"}
    progress = (job or {}).get(model.PROGRESS)
    history = (result or {}).get(model.HISTORY)
    body = {
        "job": shown,
        "result": enc.plain(result) if result is not None else None,
        "progress": enc.plain(progress) if isinstance(progress, dict) else None,
        "history": enc.plain(history) if isinstance(history, list) else [],
        "links": {"log": f"/api/jobs/{job_id}/log"},
    }
    return body
