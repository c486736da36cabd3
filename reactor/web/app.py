"""The HTTP app: the health endpoints always; ``/api``, ``/openapi.json`` and ``/ui`` when a
token is configured (without one they answer 404, as any unknown path does).

Why FastAPI for ``/api``: it is Starlette (the health routes are unchanged) plus an OpenAPI
document generated from the routes' pydantic models and request validation with 422 answers,
which the property tests (schemathesis) read; hand-writing both would be more code than the API.
"""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import FastAPI
from starlette.applications import Starlette
from starlette.types import ASGIApp

from reactor import __version__
from reactor.web.api import ApiParts, routers
from reactor.web.api import errors as api_errors
from reactor.web.health import Probes, health_routes
from reactor.web.limits import BodyLimit, MongoBound, SecurityHeaders

DESCRIPTION = """\
Jobs, workflows, templates, handlers and the fleet of mongo-reactor. Every route needs
`Authorization: Bearer <REACTOR_API_TOKEN>`; the read-only token (REACTOR_API_READ_TOKEN) may call
the GET routes. Errors have one shape: `{"error": {"status", "type", "message", "details"}}`."""


@dataclass(frozen=True)
class WebParts:
    """What the web layer serves besides the probes (``None``: no token, health only)."""

    api: ApiParts
    max_body_bytes: int
    ui_secure_cookie: bool = False
    timeout_s: float = 10.0  # MongoDB's part of one request (503 past it)


def build_app(probes: Probes, web: WebParts | None = None) -> ASGIApp:
    """The app for ``probes``, with the API and the dashboard when ``web`` is given."""
    if web is None:
        return Starlette(routes=health_routes(probes))
    app = FastAPI(
        title="mongo-reactor",
        version=__version__,
        description=DESCRIPTION,
        openapi_url="/openapi.json",
        docs_url=None,  # no pages loading scripts from a CDN: the CSP allows none
        redoc_url=None,
    )
    api_errors.install(app)
    for make in routers():
        app.include_router(make(web.api))
    from reactor.web.ui import pages

    app.include_router(pages.router(web.api, secure_cookie=web.ui_secure_cookie))
    pages.mount_static(app)
    app.router.routes.extend(health_routes(probes))
    return SecurityHeaders(BodyLimit(MongoBound(app, web.timeout_s), web.max_body_bytes))
