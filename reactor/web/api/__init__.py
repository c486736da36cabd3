"""``/api``: jobs, workflows, templates, handlers and the fleet over HTTP, calling the client
functions the CLI calls.

Each topic is a module with ``router(parts) -> APIRouter``; :func:`routers` lists them, so a
new topic is one module and one line here. Every route needs a bearer token (:mod:`.auth`);
errors have one shape (:mod:`.errors`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from fastapi import APIRouter
from pymongo.asynchronous.database import AsyncDatabase

from reactor.registry import Registry
from reactor.web.api.auth import Auth, Tokens


@dataclass(frozen=True)
class ApiParts:
    """What the API reads and writes, built once by the service."""

    db: AsyncDatabase[dict[str, Any]]
    registry: Registry
    auth: Auth
    jobs: str
    results: str
    jobs_root: Path
    fleet_ttl_s: float
    now: Callable[[], datetime]  # MongoDB's clock as this reactor knows it (fleet freshness)
    workflows: str = "workflows"
    templates: str = "workflow_templates"


def routers() -> list[Callable[[ApiParts], APIRouter]]:
    """The topics of ``/api``, in the order the OpenAPI document lists them."""
    from reactor.web.api import handlers, jobs, workers, workflows

    return [jobs.router, workflows.router, workflows.templates_router, handlers.router,
            workers.router]  # fmt: skip


__all__ = ["ApiParts", "Auth", "Tokens", "routers"]
