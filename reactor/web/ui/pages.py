"""The dashboard's routes: login, the overview, a job's and a workflow's page, their fragments,
and the actions (cancel and retry a job or a workflow).

A page is its fragment inside the frame; ``app.js`` fetches the fragment again every few seconds
and swaps it in, and sends the cancel and retry buttons' POSTs with the CSRF token. Templates are
rendered with autoescaping on, so a job or workflow field holding HTML is shown as text.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.staticfiles import StaticFiles

from reactor import client, joblog
from reactor.errors import ClientError
from reactor.web.api import ApiParts
from reactor.web.api import encode as enc
from reactor.web.api.auth import Role
from reactor.web.api.errors import from_reactor_error
from reactor.web.ui import dag, data, workflow
from reactor.web.ui.session import COOKIE, SESSION_S, Sessions, same_origin
from reactor.workflows import client as workflow_client

STATIC = Path(__file__).parent / "static"
REFRESH_S = 2
LOG_LINES_SHOWN = 500

_templates = Environment(
    loader=PackageLoader("reactor.web.ui", "templates"),
    autoescape=select_autoescape(default=True, default_for_string=True),
)
_templates.globals.update(data.TEMPLATE_HELPERS)
_templates.filters["pretty"] = lambda value: json.dumps(enc.plain(value), indent=2)


def mount_static(app: FastAPI) -> None:
    app.mount("/ui/static", StaticFiles(directory=STATIC), name="ui-static")


def render(name: str, **context: Any) -> str:
    return _templates.get_template(name).render(**context)


def router(parts: ApiParts, *, secure_cookie: bool) -> APIRouter:
    ui = APIRouter(prefix="/ui", include_in_schema=False)
    views = Views(parts, Sessions(parts.auth.tokens))
    _session_routes(ui, views, secure_cookie)
    _view_routes(ui, views)
    _workflow_routes(ui, views)
    _action_routes(ui, views)
    return ui


class Views:
    """Rendering a page or a fragment for the session a request carries."""

    def __init__(self, parts: ApiParts, sessions: Sessions) -> None:
        self.parts = parts
        self.sessions = sessions

    def role(self, request: Request) -> Role:
        return self.sessions.role_of(request.cookies.get(COOKIE))

    def page(self, request: Request, title: str, fragment_url: str, body: str) -> Response:
        found = self.role(request)
        cookie = request.cookies.get(COOKIE, "")
        html = render("page.html", title=title, body=body, refresh_url=fragment_url,
                      refresh_s=REFRESH_S, csrf=self.sessions.csrf_token(cookie),
                      can_write=found is Role.WRITE)  # fmt: skip
        return HTMLResponse(html)

    async def overview(self) -> str:
        return render("overview.html", o=await data.overview(self.parts))

    async def job(self, job_id: str, role: Role) -> str:
        return await _job_fragment(self.parts, job_id, role)

    async def workflow(self, workflow_id: str, role: Role) -> str:
        return render("workflow.html", w=await workflow.read(self.parts, workflow_id),
                      can_write=role is Role.WRITE, box_w=dag.NODE_W,
                      box_h=dag.NODE_H)  # fmt: skip


def _session_routes(ui: APIRouter, views: Views, secure_cookie: bool) -> None:
    @ui.get("/login")
    async def login_form(request: Request) -> Response:
        return HTMLResponse(render("login.html", failed=False))

    @ui.post("/login")
    async def login(request: Request) -> Response:
        form = parse_qs((await request.body()).decode("utf-8", "replace"))
        found = views.parts.auth.tokens.role_of((form.get("token") or [""])[0])
        if found is Role.NONE or not same_origin(request):
            return HTMLResponse(render("login.html", failed=True), status_code=401)
        response = RedirectResponse("/ui", status_code=303)
        secure = secure_cookie or request.url.scheme == "https"
        response.set_cookie(COOKIE, views.sessions.issue(found), max_age=SESSION_S, path="/ui",
                            httponly=True, samesite="strict", secure=secure)  # fmt: skip
        return response

    @ui.post("/logout")
    async def logout(request: Request) -> Response:
        response = RedirectResponse("/ui/login", status_code=303)
        response.delete_cookie(COOKIE, path="/ui")
        return response


def _view_routes(ui: APIRouter, views: Views) -> None:
    @ui.get("")
    async def overview(request: Request) -> Response:
        if views.role(request) is Role.NONE:
            return RedirectResponse("/ui/login", status_code=303)
        return views.page(request, "mongo-reactor", "/ui/fragments/overview",
                          await views.overview())  # fmt: skip

    @ui.get("/fragments/overview")
    async def overview_fragment(request: Request) -> Response:
        if views.role(request) is Role.NONE:
            return Response("signed out", status_code=401)
        return HTMLResponse(await views.overview())

    @ui.get("/jobs/{job_id}")
    async def job_page(request: Request, job_id: str) -> Response:
        role = views.role(request)
        if role is Role.NONE:
            return RedirectResponse("/ui/login", status_code=303)
        return views.page(request, f"job {job_id}", f"/ui/fragments/jobs/{quote(job_id)}",
                          await views.job(job_id, role))  # fmt: skip

    @ui.get("/fragments/jobs/{job_id}")
    async def job_fragment(request: Request, job_id: str) -> Response:
        role = views.role(request)
        if role is Role.NONE:
            return Response("signed out", status_code=401)
        return HTMLResponse(await views.job(job_id, role))


def _workflow_routes(ui: APIRouter, views: Views) -> None:
    @ui.get("/workflows/{workflow_id}")
    async def workflow_page(request: Request, workflow_id: str) -> Response:
        role = views.role(request)
        if role is Role.NONE:
            return RedirectResponse("/ui/login", status_code=303)
        fragment = f"/ui/fragments/workflows/{quote(workflow_id, safe='')}"
        return views.page(request, f"workflow {workflow_id}", fragment,
                          await views.workflow(workflow_id, role))  # fmt: skip

    @ui.get("/fragments/workflows/{workflow_id}")
    async def workflow_fragment(request: Request, workflow_id: str) -> Response:
        role = views.role(request)
        if role is Role.NONE:
            return Response("signed out", status_code=401)
        return HTMLResponse(await views.workflow(workflow_id, role))


Act = Callable[[str], Awaitable[object]]


def _action_routes(ui: APIRouter, views: Views) -> None:
    parts = views.parts
    jobs: dict[str, Act] = {
        "cancel": lambda job_id: client.cancel(parts.db, job_id, jobs=parts.jobs),
        "retry": lambda job_id: client.retry(parts.db, job_id, jobs=parts.jobs),
    }
    workflows: dict[str, Act] = {
        "cancel": lambda wf_id: workflow_client.cancel(parts.db, wf_id, workflows=parts.workflows),
        "retry": lambda wf_id: workflow_client.retry(parts.db, wf_id, workflows=parts.workflows),
    }

    @ui.post("/jobs/{job_id}/{action}")
    async def act_on_job(request: Request, job_id: str, action: str) -> Response:
        return await _act(views, request, jobs, action, job_id)

    @ui.post("/workflows/{workflow_id}/{action}")
    async def act_on_workflow(request: Request, workflow_id: str, action: str) -> Response:
        return await _act(views, request, workflows, action, workflow_id)


async def _act(
    views: Views, request: Request, actions: dict[str, Act], action: str, target: str
) -> Response:
    """One button's POST: a writer's session with its CSRF token, a known action; a client
    error (not found, not in a state that allows it) becomes its message and status."""
    if views.role(request) is not Role.WRITE or not views.sessions.csrf_ok(request):
        return JSONResponse({"message": "not allowed (sign in again)"}, status_code=403)
    if action not in actions:
        return JSONResponse({"message": f"no action {action!r}"}, status_code=404)
    try:
        await actions[action](target)
    except ClientError as exc:
        error = from_reactor_error(exc)
        status = error.status if error is not None else 400
        return JSONResponse({"message": str(exc)}, status_code=status)
    return JSONResponse({"message": f"{action} requested"})


async def _job_fragment(parts: ApiParts, job_id: str, role: Role) -> str:
    job, result = await client.job_status(parts.db, job_id, jobs=parts.jobs, results=parts.results)
    run, lines = 1, list[dict[str, Any]]()
    if job is not None:
        run, lines, _ = await client.job_log(
            parts.db, parts.jobs_root, job_id, limit=LOG_LINES_SHOWN, jobs=parts.jobs
        )
    return render("job.html", job_id=job_id, job=job, result=result, run=run,
                  log=[_log_line(line) for line in lines], can_write=role is Role.WRITE,
                  log_path=joblog.LOG_DIR)  # fmt: skip


def _log_line(line: dict[str, Any]) -> dict[str, str]:
    known = {"timestamp", "level", "event", "logger", "job_id", "command", "attempt", "run"}
    rest = {k: v for k, v in line.items() if k not in known}
    return {
        "at": str(line.get("timestamp", "")),
        "level": str(line.get("level", "")),
        "event": str(line.get("event", "")),
        "fields": json.dumps(enc.plain(rest)) if rest else "",
    }
