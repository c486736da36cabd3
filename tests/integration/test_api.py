"""/api: jobs submitted, read, listed, cancelled and retried over HTTP, with tokens and one
error shape; handlers discovered with their argument schemas."""

from __future__ import annotations

import io
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import httpx
from pymongo.asynchronous.database import AsyncDatabase

from reactor.client import wait_for_result
from reactor.config import Settings
from reactor.logging import configure
from reactor.registry import Registry, load_registry
from reactor.service import Service
from reactor.web.app import build_app
from tests.integration import observe_handlers
from tests.integration.jobs_lib import Tally
from tests.integration.reactors import running

Db = AsyncDatabase[dict[str, Any]]
TOKEN = "rw-token-for-tests"
READ_TOKEN = "ro-token-for-tests"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
READ = {"Authorization": f"Bearer {READ_TOKEN}"}


def api_settings(settings: Settings, **more: Any) -> Settings:
    return settings.model_copy(update={"api_token": TOKEN, "api_read_token": READ_TOKEN, **more})


@asynccontextmanager
async def serving(
    settings: Settings, registry: Registry
) -> AsyncIterator[tuple[Service, httpx.AsyncClient]]:
    """A reactor with the API on, and an HTTP client talking to its app in-process."""
    async with running(api_settings(settings), registry) as reactor:
        transport = httpx.ASGITransport(app=build_app(reactor.probes(), reactor.web()))
        async with httpx.AsyncClient(transport=transport, base_url="http://reactor") as http:
            yield reactor, http


async def test_a_job_posted_runs_and_its_result_is_read_back(
    settings: Settings, db: Db, registry: Registry
) -> None:
    """POST /api/jobs answers 201 with the job; GET returns its result once it ran."""
    async with serving(settings, registry) as (_, http):
        posted = await http.post(
            "/api/jobs", json={"command": "echo", "args": {"x": 1}, "job_id": "a1"}, headers=AUTH
        )
        assert posted.status_code == 201, posted.text
        assert posted.json()["job_id"] == "a1"
        assert posted.headers["location"] == "/api/jobs/a1"
        await wait_for_result(db, "a1", timeout_s=20)
        found = (await http.get("/api/jobs/a1", headers=AUTH)).json()
    assert found["result"]["status"] == "succeeded"
    assert found["result"]["result"] == {"x": 1}
    assert found["history"] == []


async def test_a_duplicate_job_id_is_409_in_the_error_shape(
    settings: Settings, registry: Registry
) -> None:
    """A second POST with a taken job_id answers 409 with the one error shape."""
    async with serving(settings, registry) as (_, http):
        body = {"command": "echo", "job_id": "dup"}
        assert (await http.post("/api/jobs", json=body, headers=AUTH)).status_code == 201
        again = await http.post("/api/jobs", json=body, headers=AUTH)
    assert again.status_code == 409
    assert again.json()["error"]["type"] == "duplicate_job"
    assert set(again.json()["error"]) == {"status", "type", "message", "details"}


async def test_invalid_args_are_422_before_anything_is_written(
    settings: Settings, db: Db, registry: Registry
) -> None:
    """Args that do not fit the handler's signature, or an unknown command, write nothing."""
    async with serving(settings, load_registry()) as (_, http):
        wrong_type = await http.post(
            "/api/jobs", json={"command": "ocr", "args": {"psm": "many"}, "job_id": "bad1"},
            headers=AUTH,
        )  # fmt: skip
        unknown_arg = await http.post(
            "/api/jobs", json={"command": "ocr", "args": {"nope": 1}, "job_id": "bad2"},
            headers=AUTH,
        )  # fmt: skip
        unknown_command = await http.post(
            "/api/jobs", json={"command": "nothing", "job_id": "bad3"}, headers=AUTH
        )
        assert await db.jobs.count_documents({}) == 0
    assert [r.status_code for r in (wrong_type, unknown_arg, unknown_command)] == [422] * 3
    assert wrong_type.json()["error"]["type"] == "invalid_args"
    assert "psm" in wrong_type.json()["error"]["message"]
    assert unknown_command.json()["error"]["details"][0]["where"] == "body.command"


async def test_requests_without_a_valid_token_are_401(
    settings: Settings, registry: Registry
) -> None:
    """No header, a wrong token, or a token in the query string: 401 with WWW-Authenticate."""
    async with serving(settings, registry) as (_, http):
        answers = [
            await http.get("/api/jobs"),
            await http.get("/api/jobs", headers={"Authorization": "Bearer wrong"}),
            await http.get(f"/api/jobs?token={TOKEN}"),
            await http.get(f"/api/jobs?access_token={TOKEN}"),
        ]
    assert [a.status_code for a in answers] == [401] * 4
    assert all(a.headers["www-authenticate"] == "Bearer" for a in answers)
    assert all(a.json()["error"]["type"] == "unauthorized" for a in answers)


async def test_the_read_only_token_reads_but_cannot_write(
    settings: Settings, registry: Registry
) -> None:
    """The read-only token lists jobs and handlers; submitting with it is 403."""
    async with serving(settings, registry) as (_, http):
        listed = await http.get("/api/jobs", headers=READ)
        handlers = await http.get("/api/handlers", headers=READ)
        posted = await http.post("/api/jobs", json={"command": "echo"}, headers=READ)
    assert (listed.status_code, handlers.status_code, posted.status_code) == (200, 200, 403)


async def test_without_a_token_configured_api_and_ui_answer_404(
    settings: Settings, registry: Registry
) -> None:
    """No REACTOR_API_TOKEN: /api, /openapi.json and /ui are not there; /healthz still is."""
    async with running(settings, registry) as reactor:
        transport = httpx.ASGITransport(app=build_app(reactor.probes(), reactor.web()))
        async with httpx.AsyncClient(transport=transport, base_url="http://reactor") as http:
            codes = [
                (await http.get(path, headers=AUTH)).status_code
                for path in ("/api/jobs", "/openapi.json", "/ui", "/ui/login")
            ]
            health = await http.get("/healthz")
    assert codes == [404, 404, 404, 404]
    assert health.status_code == 200


async def test_listing_pages_through_every_job_by_cursor(
    settings: Settings, db: Db, registry: Registry
) -> None:
    """GET /api/jobs with limit and cursor visits every job of a command once, newest first."""
    async with serving(settings, registry) as (_, http):
        await db.jobs.insert_many(
            [{"job_id": f"p{i}", "command": "nothing_here", "status": "failed"} for i in range(7)]
        )
        seen: list[str] = []
        cursor: str | None = None
        while True:
            params = {"command": "nothing_here", "status": "failed", "limit": 3}
            if cursor:
                params["cursor"] = cursor
            page = (await http.get("/api/jobs", params=params, headers=AUTH)).json()
            seen += [job["job_id"] for job in page["jobs"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        garbage = await http.get("/api/jobs", params={"cursor": "%%%"}, headers=AUTH)
    assert seen == [f"p{i}" for i in reversed(range(7))]
    assert garbage.status_code == 422


async def test_cancel_and_retry_through_the_api(
    settings: Settings, db: Db, registry: Registry, tally: Tally
) -> None:
    """A running job is cancelled, then retried to a new run; a second cancel is 409."""
    async with serving(settings, registry) as (_, http):
        await http.post("/api/jobs", json={"command": "gated", "job_id": "c1"}, headers=AUTH)
        await tally.gate.until_waiting(1)
        cancelled = await http.post("/api/jobs/c1/cancel", headers=AUTH)
        assert cancelled.status_code == 200
        assert cancelled.json()["job"]["cancel_requested"] is True
        first = await wait_for_result(db, "c1", timeout_s=20)
        assert first["status"] == "cancelled"
        with anyio.fail_after(20):
            while (await http.post("/api/jobs/c1/cancel", headers=AUTH)).status_code != 409:  # noqa: ASYNC110
                await anyio.sleep(0.05)  # the job's status lands just after its result: no event
        retried = await http.post("/api/jobs/c1/retry", headers=AUTH)
        tally.gate.open.set()
        second = await wait_for_result(db, "c1", timeout_s=20, min_run=2)
        missing = await http.post("/api/jobs/nope/retry", headers=AUTH)
    assert retried.status_code == 200
    assert second["status"] == "succeeded"
    assert missing.status_code == 404
    assert missing.json()["error"]["type"] == "job_not_found"


async def test_a_jobs_log_is_read_through_the_api(settings: Settings, db: Db) -> None:
    """GET /api/jobs/{id}/log pages through what the job's handler logged and printed."""
    configure("json", "info", stream=io.StringIO())  # the reactor's own logging, as in `run`
    try:
        async with serving(settings, observe_handlers.registry()) as (_, http):
            body = {"command": "loud_loop", "job_id": "lg", "args": {"tag": "t", "lines": 3}}
            await http.post("/api/jobs", json=body, headers=AUTH)
            await wait_for_result(db, "lg", timeout_s=20)
            first = (await http.get("/api/jobs/lg/log", params={"limit": 2}, headers=AUTH)).json()
            rest = await http.get(
                "/api/jobs/lg/log", params={"after": first["next_line"]}, headers=AUTH
            )
            missing = await http.get("/api/jobs/nope/log", headers=AUTH)
    finally:
        logging.getLogger().handlers.clear()
    lines = first["lines"] + rest.json()["lines"]
    assert (first["run"], first["next_line"], len(first["lines"])) == (1, 2, 2)
    assert lines[0]["event"] == "job_started"
    assert [line["text"] for line in lines if line["event"] == "handler_print"] == [
        "printed t 0", "printed t 1", "printed t 2",
    ]  # fmt: skip
    assert missing.status_code == 404


async def test_handler_discovery_lists_ocr_arguments_with_types_and_defaults(
    settings: Settings,
) -> None:
    """GET /api/handlers/ocr shows how it runs and lang, psm and dpi with types and defaults."""
    async with serving(settings, load_registry()) as (_, http):
        listed = (await http.get("/api/handlers", headers=AUTH)).json()
        ocr = (await http.get("/api/handlers/ocr", headers=AUTH)).json()
        missing = await http.get("/api/handlers/nope", headers=AUTH)
    assert "ocr" in [h["name"] for h in listed["handlers"]]
    assert ocr["runs"] == "process"
    assert ocr["timeout_s"] > 0
    assert ocr["retry"]["max_attempts"] >= 1
    properties = ocr["args_schema"]["properties"]
    assert properties["lang"] == {"default": "eng", "title": "Lang", "type": "string"}
    assert properties["psm"] == {"default": 3, "title": "Psm", "type": "integer"}
    assert properties["dpi"]["default"] is None
    assert {"type": "integer"} in properties["dpi"]["anyOf"]
    assert missing.status_code == 404


async def test_request_bodies_over_the_limit_are_413(
    settings: Settings, db: Db, registry: Registry
) -> None:
    """A body over api_max_body_bytes is refused with 413 and nothing is written."""
    async with serving(settings, registry) as (_, http):
        big = {"command": "echo", "args": {"blob": "x" * 2_000_000}}
        answer = await http.post("/api/jobs", json=big, headers=AUTH)
        assert await db.jobs.count_documents({}) == 0
    assert answer.status_code == 413
    assert answer.json()["error"]["type"] == "too_large"


async def test_the_openapi_document_describes_the_routes(
    settings: Settings, registry: Registry
) -> None:
    """/openapi.json lists the job, handler and worker routes and the bearer scheme."""
    async with serving(settings, registry) as (_, http):
        document = (await http.get("/openapi.json")).json()
    paths = document["paths"]
    assert {"/api/jobs", "/api/jobs/{job_id}", "/api/jobs/{job_id}/cancel",
            "/api/jobs/{job_id}/retry", "/api/jobs/{job_id}/log", "/api/handlers",
            "/api/handlers/{name}", "/api/workers"} <= set(paths)  # fmt: skip
    assert document["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    assert not any(path.startswith("/ui") for path in paths)
