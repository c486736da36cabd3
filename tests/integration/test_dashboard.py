"""The dashboard in a real browser (Debian's chromium driven by Playwright): live progress, a
failure appearing, cancel and retry by clicks, HTML in job fields shown as text; and its session
cookie, CSRF check and Content-Security-Policy."""

from __future__ import annotations

from contextlib import asynccontextmanager
from typing import Any

import anyio
import anyio.from_thread
import httpx
from pymongo.asynchronous.database import AsyncDatabase

from reactor.client import wait_for_result
from reactor.config import Settings
from reactor.handler import JobContext
from reactor.registry import Registry, build_handler
from reactor.web.app import build_app
from reactor.web.limits import CONTENT_SECURITY_POLICY
from tests.integration.browser import TOKEN, browser_page, in_browser, needs_browser, serving
from tests.integration.jobs_lib import Tally
from tests.integration.reactors import running

Db = AsyncDatabase[dict[str, Any]]
HOSTILE = "<script>window.pwned = 1</script><b id='injected'>bold</b>"


async def stepper(ctx: JobContext, steps: int = 12, step_s: float = 0.5) -> int:
    """Report progress step by step."""
    for i in range(1, steps + 1):
        ctx.progress(i / steps, f"step {i} of {steps}")
        await anyio.sleep(step_s)
    return steps


def with_stepper(registry: Registry) -> Registry:
    return Registry([*registry, build_handler("stepper", stepper)])


@asynccontextmanager
async def dashboard(settings: Settings, registry: Registry) -> Any:
    async with serving(settings, with_stepper(registry)) as port:
        yield port


def post_job(port: int, body: dict[str, Any]) -> None:
    response = httpx.post(f"http://127.0.0.1:{port}/api/jobs", json=body, timeout=10,
                          headers={"Authorization": f"Bearer {TOKEN}"})  # fmt: skip
    assert response.status_code == 201, response.text


@needs_browser
async def test_progress_moves_and_a_failure_appears(settings: Settings, registry: Registry) -> None:
    """The overview shows a running job's progress bar growing, then a failed job with its error
    type and message in the recent failures."""
    async with dashboard(settings, registry) as port:

        def scenario() -> None:
            from playwright.sync_api import expect

            with browser_page(port) as page:
                post_job(port, {"command": "stepper", "job_id": "walker"})
                bar = page.locator('#running tr[data-job-id="walker"] progress')
                expect(bar).to_have_count(1)
                first = float(bar.get_attribute("value") or 0)
                page.wait_for_function(
                    "([sel, v]) => { const e = document.querySelector(sel);"
                    " return e && Number(e.value) > v; }",
                    arg=['#running tr[data-job-id="walker"] progress', first],
                )
                post_job(port, {"command": "explode", "job_id": "broken",
                                "args": {"message": "the disk is on fire"}})  # fmt: skip
                row = page.locator('#failures tr[data-job-id="broken"]')
                expect(row.locator(".error-type")).to_have_text("RuntimeError")

        await in_browser(scenario)


@needs_browser
async def test_cancel_and_retry_buttons_work(
    settings: Settings, db: Db, registry: Registry, tally: Tally
) -> None:
    """On a job's page, Cancel stops the running job and Retry runs it again to success."""
    gate = tally.gate
    async with dashboard(settings, registry) as port:
        await db.jobs.insert_one({"job_id": "held-in-browser", "command": "gated", "args": {}})
        await gate.until_waiting(1)

        def scenario() -> None:
            from playwright.sync_api import expect

            with browser_page(port) as page:
                page.goto(f"http://127.0.0.1:{port}/ui/jobs/held-in-browser")
                status = page.locator("#job-status")
                expect(status).to_have_text("running")
                page.click('button[data-action="cancel"]')
                expect(status).to_have_text("cancelled")
                page.click('button[data-action="retry"]')
                expect(page.locator("#notice")).to_have_text("retry requested")
                anyio.from_thread.run_sync(gate.open.set)
                expect(status).to_have_text("succeeded")
                expect(page.locator("#job-result")).to_contain_text("released")

        await in_browser(scenario)
    result = await wait_for_result(db, "held-in-browser", timeout_s=5, min_run=2)
    assert result["history"][0]["status"] == "cancelled"


@needs_browser
async def test_html_in_job_fields_is_shown_as_text(settings: Settings, registry: Registry) -> None:
    """A job whose args and error hold markup shows it as text: no element is made, no script
    runs, on the job's page or in the failures list."""
    async with dashboard(settings, registry) as port:

        def scenario() -> None:
            from playwright.sync_api import expect

            with browser_page(port) as page:
                post_job(port, {"command": "explode", "job_id": "hostile",
                                "args": {"message": HOSTILE}})  # fmt: skip
                row = page.locator('#failures tr[data-job-id="hostile"] .error-message')
                expect(row).to_have_text(HOSTILE)
                page.goto(f"http://127.0.0.1:{port}/ui/jobs/hostile")
                expect(page.locator("#job-args")).to_contain_text(HOSTILE)
                expect(page.locator("#job-error")).to_contain_text(HOSTILE)
                assert page.locator("#injected").count() == 0
                assert page.evaluate("window.pwned") is None

        await in_browser(scenario)


def _http(reactor: Any) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=build_app(reactor.probes(), reactor.web()))
    return httpx.AsyncClient(transport=transport, base_url="http://reactor")


async def test_the_session_cookie_csrf_and_csp(
    settings: Settings, db: Db, registry: Registry
) -> None:
    """Signing in sets an HttpOnly, SameSite=Strict cookie holding no token; an action without the
    CSRF token or from another origin is refused; pages carry the strict CSP."""
    config = settings.model_copy(update={"api_token": TOKEN})
    async with running(config, registry) as reactor, _http(reactor) as http:
        await db.jobs.insert_one({"job_id": "q1", "command": "gated", "args": {}})
        assert (await http.get("/ui")).status_code == 303
        refused = await http.post("/ui/login", data={"token": "wrong"})
        signed = await http.post("/ui/login", data={"token": TOKEN})
        cookie = signed.headers["set-cookie"]
        page = await http.get("/ui/jobs/q1")
        no_csrf = await http.post("/ui/jobs/q1/cancel")
        csrf = page.text.split('name="csrf-token" content="')[1].split('"')[0]
        evil = {"X-CSRF-Token": csrf, "Origin": "https://evil.example"}
        foreign = await http.post("/ui/jobs/q1/cancel", headers=evil)
        allowed = await http.post("/ui/jobs/q1/cancel", headers={"X-CSRF-Token": csrf})
    assert refused.status_code == 401
    assert signed.status_code == 303
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie
    assert TOKEN not in cookie
    assert page.status_code == 200
    assert page.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert "script-src 'self'" in CONTENT_SECURITY_POLICY
    assert "unsafe-inline" not in CONTENT_SECURITY_POLICY
    assert (no_csrf.status_code, foreign.status_code, allowed.status_code) == (403, 403, 200)


async def test_the_read_only_token_signs_in_without_buttons(
    settings: Settings, db: Db, registry: Registry
) -> None:
    """A session from the read-only token shows jobs without action buttons and cannot act."""
    config = settings.model_copy(update={"api_token": TOKEN, "api_read_token": "ro"})
    async with running(config, registry) as reactor, _http(reactor) as http:
        await db.jobs.insert_one({"job_id": "r1", "command": "nothing", "status": "failed"})
        await http.post("/ui/login", data={"token": "ro"})
        page = await http.get("/ui/jobs/r1")
        csrf = page.text.split('name="csrf-token" content="')[1].split('"')[0]
        act = await http.post("/ui/jobs/r1/retry", headers={"X-CSRF-Token": csrf})
    assert page.status_code == 200
    assert "data-action" not in page.text
    assert act.status_code == 403
