"""``/api/handlers``: processor discovery, what each handler is and the args it takes."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path

from reactor.registry import Handler
from reactor.retry import RetryRules
from reactor.web.api import ApiParts
from reactor.web.api.errors import ERROR_RESPONSES, ApiError, ErrorResponse
from reactor.web.api.schemas import HandlerDetail, HandlerList


def summary(handler: Handler) -> dict[str, Any]:
    return {
        "name": handler.name,
        "runs": handler.runs.value,
        "version": handler.version,
        "source": handler.source,
    }


def retry_doc(rules: RetryRules) -> dict[str, Any]:
    return {
        "max_attempts": rules.max_attempts,
        "backoff_s": rules.backoff_s,
        "max_backoff_s": rules.max_backoff_s,
        "jitter": rules.jitter,
        "retry_timeouts": rules.retry_timeouts,
        "retry_on": [r if isinstance(r, str) else r.__qualname__ for r in rules.retry_on],
    }


def describe(handler: Handler) -> dict[str, Any]:
    """Everything about a handler a client needs to submit a job to it."""
    return {
        **summary(handler),
        "distribution": handler.distribution,
        "timeout_s": handler.timeout_s,
        "max_concurrency": handler.options.max_concurrency,
        "retry": retry_doc(handler.retry),
        "wants_context": handler.wants_context,
        "path_args": sorted(handler.path_fields),
        "args_schema": handler.arguments.json_schema(),
    }


def router(parts: ApiParts) -> APIRouter:
    api = APIRouter(
        prefix="/api/handlers",
        tags=["handlers"],
        responses=ERROR_RESPONSES,
    )

    @api.get("", response_model=HandlerList, dependencies=[parts.auth.reader])
    async def list_handlers() -> dict[str, Any]:
        """The commands this reactor runs."""
        return {"handlers": [summary(h) for h in parts.registry]}

    missing: dict[int | str, dict[str, Any]] = {
        404: {"model": ErrorResponse, "description": "no such handler"}
    }

    @api.get("/{name}", response_model=HandlerDetail, dependencies=[parts.auth.reader],
             responses=missing)  # fmt: skip
    async def get_handler(name: Annotated[str, Path(max_length=200)]) -> dict[str, Any]:
        """How a handler runs, its limits, its retry policy and its arguments' JSON Schema."""
        handler = parts.registry.get(name)
        if handler is None:
            known = ", ".join(parts.registry.names()) or "none"
            raise ApiError(404, "handler_not_found", f"no handler {name!r}; known: {known}")
        return describe(handler)

    return api
