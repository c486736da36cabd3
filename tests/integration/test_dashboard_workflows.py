"""Workflows in the dashboard, in a real browser: the overview lists them, a workflow's page
draws its DAG with each step's state changing live, and its Cancel and Retry buttons act on the
workflow; markup in a workflow is shown as text; the buttons' route answers the workflow
client's errors with their status."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import anyio.from_thread
import httpx
from pymongo.asynchronous.database import AsyncDatabase

from reactor import workdir
from reactor.config import Settings
from reactor.web.app import build_app
from reactor.workflows import client
from tests.integration import workflow_handlers as wh
from tests.integration.browser import TOKEN, browser_page, in_browser, needs_browser, serving
from tests.integration.jobs_lib import Tally
from tests.integration.reactors import running

Db = AsyncDatabase[dict[str, Any]]
WAIT_S = 60.0
HOSTILE = "<script>window.pwned = 1</script><b id='injected'>bold</b>"


def step(name: str, command: str, **fields: Any) -> dict[str, Any]:
    return {"name": name, "command": command, **fields}


def held_fan_out(n: int) -> list[dict[str, Any]]:
    """``items`` lists n elements, ``hold`` waits at the gate once per element, ``after``
    follows."""
    return [
        step("items", "wf_items", args={"n": n}),
        step("hold", "wf_hold", after=["items"], for_each={"$result": "items.items"}),
        step("after", "wf_count", after=["hold"]),
    ]


def node(page: Any, name: str, part: str = ".state") -> Any:
    return page.locator(f'#dag g.node[data-step="{name}"] {part}')


@needs_browser
async def test_the_dag_shows_each_steps_state_until_the_workflow_succeeds(
    settings: Settings, db: Db, tally: Tally
) -> None:
    """From the overview's Workflows list to the workflow's page: the split step succeeded, the
    fan-out running with its elements counted, the last step pending; once the held elements
    are let go, every step and the workflow show succeeded and 5/5 elements done."""
    async with serving(settings, wh.registry(tally)) as port:
        await client.submit(db, {"workflow_id": "fan", "steps": held_fan_out(5)})
        with anyio.fail_after(WAIT_S):
            await tally.gate.until_waiting(1)

        def scenario() -> None:
            from playwright.sync_api import expect

            with browser_page(port) as page:
                page.click('#workflows tr[data-workflow-id="fan"] a')
                expect(page.locator("#workflow-status")).to_have_text("running")
                expect(page.locator("#dag path.edge")).to_have_count(2)
                expect(node(page, "items")).to_have_text("succeeded")
                expect(node(page, "hold")).to_have_text("running")
                expect(node(page, "hold", ".elements")).to_have_text("0/5 done")
                expect(node(page, "after")).to_have_text("pending")
                expect(node(page, "after", ".box")).to_have_count(1)
                anyio.from_thread.run_sync(tally.gate.open.set)
                expect(page.locator("#workflow-status")).to_have_text("succeeded")
                expect(node(page, "hold", ".elements")).to_have_text("5/5 done")
                expect(node(page, "hold")).to_have_text("succeeded")
                expect(node(page, "after")).to_have_text("succeeded")
                expect(page.locator("#step-jobs tbody tr")).to_have_count(7)
                expect(page.locator("#workflow-result")).to_be_visible()
                page.click('#step-jobs tr[data-job-id="fan.hold.4"] a')
                expect(page.locator("#job-status")).to_have_text("succeeded")

        await in_browser(scenario)


@needs_browser
async def test_a_failed_workflow_shows_where_and_retry_runs_only_what_failed(
    settings: Settings, db: Db, tally: Tally
) -> None:
    """The middle step fails: the page shows the workflow and that step failed, the last step
    cancelled and the error; after the input is fixed, Retry runs it again to success without
    running the first step twice."""
    steps = [
        step("first", "wf_count", args={"n": 1}),
        step("middle", "wf_needs", after=["first"], args={"fix": "fix.txt"}),
        step("last", "wf_count", after=["middle"], args={"got": {"$result": "middle"}}),
    ]
    fix: Path = workdir.workflow_dir(settings.jobs_root, "mend") / "fix.txt"
    async with serving(settings, wh.registry(tally), max_attempts=1) as port:
        await client.submit(db, {"workflow_id": "mend", "steps": steps})
        failed = await client.wait(db, "mend", timeout_s=WAIT_S)
        assert failed["status"] == "failed"

        def scenario() -> None:
            from playwright.sync_api import expect

            with browser_page(port) as page:
                page.goto(f"http://127.0.0.1:{port}/ui/workflows/mend")
                expect(page.locator("#workflow-status")).to_have_text("failed")
                expect(node(page, "first")).to_have_text("succeeded")
                expect(node(page, "middle")).to_have_text("failed")
                expect(node(page, "last")).to_have_text("cancelled")
                expect(page.locator("#workflow-error")).to_contain_text("fix.txt is missing")
                expect(page.locator('button[data-action="cancel"]')).to_be_disabled()
                fix.write_text("mended")
                page.click('button[data-action="retry"]')
                expect(page.locator("#notice")).to_have_text("retry requested")
                expect(page.locator("#workflow-run")).to_have_text("2")
                expect(page.locator("#workflow-status")).to_have_text("succeeded")
                expect(node(page, "last")).to_have_text("succeeded")
                expect(page.locator("#workflow-result")).to_contain_text("mended")

        await in_browser(scenario)
    assert (tally.runs["mend.first"], tally.runs["mend.middle"]) == (1, 2)


@needs_browser
async def test_the_cancel_button_cancels_a_running_workflow(
    settings: Settings, db: Db, tally: Tally
) -> None:
    """Cancel on a running workflow's page ends it cancelled, its held fan-out and the step
    after it cancelled, and Retry becomes available."""
    async with serving(settings, wh.registry(tally)) as port:
        await client.submit(db, {"workflow_id": "stop", "steps": held_fan_out(3)})
        with anyio.fail_after(WAIT_S):
            await tally.gate.until_waiting(1)

        def scenario() -> None:
            from playwright.sync_api import expect

            with browser_page(port) as page:
                page.goto(f"http://127.0.0.1:{port}/ui/workflows/stop")
                expect(node(page, "hold")).to_have_text("running")
                page.click('button[data-action="cancel"]')
                expect(page.locator("#notice")).to_have_text("cancel requested")
                expect(page.locator("#workflow-status")).to_have_text("cancelled")
                expect(node(page, "hold")).to_have_text("cancelled")
                expect(node(page, "after")).to_have_text("cancelled")
                expect(page.locator('button[data-action="retry"]')).to_be_enabled()

        await in_browser(scenario)
    statuses = [d["status"] async for d in db.jobs.find({"workflow.step": "hold"})]
    assert statuses == ["cancelled"] * 3


@needs_browser
async def test_markup_in_a_workflow_is_shown_as_text(
    settings: Settings, db: Db, tally: Tally
) -> None:
    """A workflow whose step name and args hold markup (it fails as invalid) shows them as text
    in its DAG and definition: no element is made, no script runs."""
    steps = [step(HOSTILE, "wf_count", args={"note": HOSTILE})]
    async with serving(settings, wh.registry(tally)) as port:
        await db.workflows.insert_one({"workflow_id": "hostile", "steps": steps})
        await client.wait(db, "hostile", timeout_s=WAIT_S)

        def scenario() -> None:
            from playwright.sync_api import expect

            with browser_page(port) as page:
                page.goto(f"http://127.0.0.1:{port}/ui/workflows/hostile")
                expect(page.locator("#workflow-status")).to_have_text("failed")
                expect(page.locator("#dag g.node")).to_have_count(1)
                assert page.locator("#dag g.node").get_attribute("data-step") == HOSTILE
                expect(page.locator("#dag g.node title")).to_contain_text(HOSTILE)
                expect(page.locator("#workflow-steps")).to_contain_text(HOSTILE)
                assert page.locator("#injected").count() == 0
                assert page.evaluate("window.pwned") is None

        await in_browser(scenario)


def _http(reactor: Any) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=build_app(reactor.probes(), reactor.web()))
    return httpx.AsyncClient(transport=transport, base_url="http://reactor")


async def test_the_workflow_buttons_route_answers_client_errors_with_their_status(
    settings: Settings, db: Db, tally: Tally
) -> None:
    """Retrying an unknown workflow is 404, retrying an unfinished one 409, cancelling it 200;
    without the CSRF token it is 403."""
    config = settings.model_copy(update={"api_token": TOKEN})
    async with running(config, wh.registry(tally)) as reactor, _http(reactor) as http:
        await client.submit(db, {"workflow_id": "busy", "steps": held_fan_out(1)})
        with anyio.fail_after(WAIT_S):
            await tally.gate.until_waiting(1)
        await http.post("/ui/login", data={"token": TOKEN})
        page = await http.get("/ui/workflows/busy")
        csrf = {"X-CSRF-Token": page.text.split('name="csrf-token" content="')[1].split('"')[0]}
        unknown = await http.post("/ui/workflows/nothing/retry", headers=csrf)
        early = await http.post("/ui/workflows/busy/retry", headers=csrf)
        forged = await http.post("/ui/workflows/busy/cancel")
        cancel = await http.post("/ui/workflows/busy/cancel", headers=csrf)
        done = await client.wait(db, "busy", timeout_s=WAIT_S)
    assert page.status_code == 200
    assert 'data-kind="workflows"' in page.text
    assert (unknown.status_code, early.status_code) == (404, 409)
    assert "no workflow" in unknown.json()["message"]
    assert (forged.status_code, cancel.status_code) == (403, 200)
    assert done["status"] == "cancelled"
