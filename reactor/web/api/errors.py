"""One JSON error shape for every ``/api`` failure, whoever raised it.

::

    {"error": {"status": 404, "type": "not_found", "message": "...", "details": [...]}}

``details`` lists where and why for invalid input (422); it is ``null`` otherwise.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException

from reactor.errors import (
    DuplicateJob,
    DuplicateWorkflow,
    InvalidArguments,
    InvalidWorkflow,
    JobNotFound,
    JobNotStorable,
    JobStateConflict,
    ReactorError,
    UnknownCommand,
    WorkflowNotFound,
    WorkflowStateConflict,
)


class ErrorBody(BaseModel):
    status: int
    type: str
    message: str
    details: list[dict[str, Any]] | None = None


class ErrorResponse(BaseModel):
    """The body of every error response."""

    error: ErrorBody


class ApiError(Exception):
    """An error response to send: its status, a short type and a message for people."""

    def __init__(
        self,
        status: int,
        type_: str,
        message: str,
        *,
        details: list[dict[str, Any]] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.type, self.message = status, type_, message
        self.details = details
        self.headers = dict(headers or {})


_STATUS_TYPES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "too_large",
    415: "unsupported_media_type",
    422: "invalid",
}

# The client errors the routes let through, as responses.
_REACTOR_ERRORS: tuple[tuple[type[ReactorError], int, str], ...] = (
    (JobNotFound, 404, "job_not_found"),
    (DuplicateJob, 409, "duplicate_job"),
    (JobStateConflict, 409, "job_state_conflict"),
    (UnknownCommand, 422, "unknown_command"),
    (InvalidArguments, 422, "invalid_args"),
    (JobNotStorable, 422, "not_storable"),
    (WorkflowNotFound, 404, "workflow_not_found"),
    (DuplicateWorkflow, 409, "duplicate_workflow"),
    (WorkflowStateConflict, 409, "workflow_state_conflict"),
    (InvalidWorkflow, 422, "invalid_workflow"),
)

# For the OpenAPI document: the error responses a route may give.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorResponse, "description": kind.replace("_", " ")}
    for code, kind in ((400, "bad_request"), (401, "unauthorized"), (403, "forbidden"),
                       (413, "too_large"), (422, "invalid"))
}  # fmt: skip


def known_query_only(request: Request) -> None:
    """Refuse query parameters a route does not take (422): a misspelt filter would otherwise
    list everything, and a token sent as ``?token=`` is named as the mistake it is."""
    route = request.scope.get("route")
    dependant = getattr(route, "dependant", None)
    known = {param.alias for param in getattr(dependant, "query_params", [])}
    unknown = sorted(set(request.query_params) - known)
    if unknown:
        details = [{"where": f"query.{name}", "problem": "unknown parameter"} for name in unknown]
        message = f"unknown query parameters: {', '.join(unknown)}"
        raise ApiError(422, "invalid", message + " (a token goes in the Authorization header, "
                       "never in a URL)", details=details)  # fmt: skip


def error_response(error: ApiError) -> JSONResponse:
    body = ErrorResponse(
        error=ErrorBody(
            status=error.status, type=error.type, message=error.message, details=error.details
        )
    )
    return JSONResponse(body.model_dump(), status_code=error.status, headers=error.headers)


def from_reactor_error(exc: ReactorError) -> ApiError | None:
    for kind, status, name in _REACTOR_ERRORS:
        if isinstance(exc, kind):
            return ApiError(status, name, str(exc))
    return None


def install(app: FastAPI) -> None:
    """Every error the app can answer with, in the one shape."""

    async def api_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ApiError)
        return error_response(exc)

    async def reactor_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ReactorError)
        found = from_reactor_error(exc)
        if found is None:
            raise exc
        return error_response(found)

    async def http_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, HTTPException)
        kind = _STATUS_TYPES.get(exc.status_code, "error")
        return error_response(ApiError(exc.status_code, kind, str(exc.detail),
                                       headers=exc.headers))  # fmt: skip

    async def invalid(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        details = [
            {"where": ".".join(str(p) for p in e.get("loc", ())), "problem": str(e.get("msg"))}
            for e in exc.errors()
        ]
        return error_response(ApiError(422, "invalid", "the request is not valid",
                                       details=details))  # fmt: skip

    app.add_exception_handler(ApiError, api_error)
    app.add_exception_handler(ReactorError, reactor_error)
    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(RequestValidationError, invalid)
