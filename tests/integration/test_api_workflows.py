"""/api/workflows and /api/templates: workflows submitted, read with their aggregated state,
listed, cancelled and re-run over HTTP; templates stored, read and run; a bad definition is
refused before anything is written."""

from __future__ import annotations

from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from reactor.config import Settings
from reactor.workflows import client
from tests.integration import workflow_handlers as wh
from tests.integration.jobs_lib import Tally
from tests.integration.test_api import AUTH, READ, serving

Db = AsyncDatabase[dict[str, Any]]
WAIT_S = 60.0

FAN = [
    {"name": "items", "command": "wf_items", "args": {"n": 3}},
    {"name": "square", "command": "wf_square", "after": ["items"],
     "for_each": {"$result": "items.items"}, "args": {"x": {"$item": "x"}}},
    {"name": "total", "command": "wf_total", "after": ["square"],
     "args": {"values": {"$result": "square"}}},
]  # fmt: skip


async def test_a_workflow_posted_runs_and_reads_back_with_its_steps_and_ocrd_state(
    settings: Settings, db: Db, tally: Tally
) -> None:
    """POST /api/workflows answers 201; GET shows it succeeded (SUCCESS for OCR-D), each step
    with its state and element counts, and its step jobs."""
    async with serving(settings, wh.registry(tally)) as (_, http):
        posted = await http.post("/api/workflows", json={"workflow_id": "wf1", "steps": FAN},
                                 headers=AUTH)  # fmt: skip
        assert posted.status_code == 201, posted.text
        assert posted.headers["location"] == "/api/workflows/wf1"
        assert posted.json()["workflow"]["workflow_id"] == "wf1"
        await client.wait(db, "wf1", timeout_s=WAIT_S)
        found = (await http.get("/api/workflows/wf1", headers=READ)).json()
    assert found["workflow"]["status"] == "succeeded"
    assert found["workflow"]["result"] == {"values": [0, 1, 4], "total": 5}
    assert found["ocrd_state"] == "SUCCESS"
    steps = {step["name"]: step for step in found["steps"]}
    assert [step["name"] for step in found["steps"]] == ["items", "square", "total"]
    assert steps["square"]["after"] == ["items"]
    assert (steps["square"]["status"], steps["square"]["elements"]) == ("succeeded", 3)
    assert [job["job_id"] for job in found["jobs"]] == [
        "wf1.items", "wf1.square.0", "wf1.square.1", "wf1.square.2", "wf1.total"
    ]  # fmt: skip
    assert {job["status"] for job in found["jobs"]} == {"succeeded"}
    assert found["more_jobs"] is False


async def test_an_unknown_command_or_a_cycle_is_422_and_writes_nothing(
    settings: Settings, db: Db, tally: Tally
) -> None:
    """A definition naming a command no reactor serves, or with a cycle, answers 422
    invalid_workflow saying what is wrong; no workflow and no job is written."""
    unknown = [{"name": "a", "command": "no_such_command"}]
    cycle = [{"name": "a", "command": "wf_items", "after": ["b"], "args": {"n": 1}},
             {"name": "b", "command": "wf_items", "after": ["a"], "args": {"n": 1}}]  # fmt: skip
    async with serving(settings, wh.registry(tally)) as (_, http):
        bad_command = await http.post("/api/workflows", json={"workflow_id": "u", "steps": unknown},
                                      headers=AUTH)  # fmt: skip
        bad_graph = await http.post("/api/workflows", json={"workflow_id": "c", "steps": cycle},
                                    headers=AUTH)  # fmt: skip
    for answer in (bad_command, bad_graph):
        assert answer.status_code == 422, answer.text
        assert answer.json()["error"]["type"] == "invalid_workflow"
    assert "no_such_command" in bad_command.json()["error"]["message"]
    assert "cycle" in bad_graph.json()["error"]["message"]
    assert await db.workflows.count_documents({}) == 0
    assert await db.jobs.count_documents({}) == 0


async def test_a_taken_workflow_id_is_409_and_a_missing_one_is_404(
    settings: Settings, tally: Tally
) -> None:
    """Posting a workflow_id twice answers 409 duplicate_workflow; an unknown id answers 404
    to GET, cancel and retry."""
    body = {"workflow_id": "twice", "steps": FAN}
    async with serving(settings, wh.registry(tally)) as (_, http):
        assert (await http.post("/api/workflows", json=body, headers=AUTH)).status_code == 201
        again = await http.post("/api/workflows", json=body, headers=AUTH)
        missing = [
            await http.get("/api/workflows/nope", headers=AUTH),
            await http.post("/api/workflows/nope/cancel", headers=AUTH),
            await http.post("/api/workflows/nope/retry", headers=AUTH),
        ]
    assert (again.status_code, again.json()["error"]["type"]) == (409, "duplicate_workflow")
    assert [(m.status_code, m.json()["error"]["type"]) for m in missing] == [
        (404, "workflow_not_found")
    ] * 3


async def test_cancel_stops_a_running_workflow_and_retry_runs_it_again(
    settings: Settings, db: Db, tally: Tally
) -> None:
    """A workflow whose first step runs reads running (its document is written only when a step
    ends); cancel through the API ends it cancelled; retry runs it again to success once the step
    can finish; a second cancel of a finished one is 409."""
    steps = [{"name": "hold", "command": "wf_hold"},
             {"name": "after", "command": "wf_count", "after": ["hold"]}]  # fmt: skip
    async with serving(settings, wh.registry(tally)) as (_, http):
        await http.post("/api/workflows", json={"workflow_id": "cx", "steps": steps}, headers=AUTH)
        await tally.gate.until_waiting(1)
        held = (await http.get("/api/workflows/cx", headers=READ)).json()
        cancelled = await http.post("/api/workflows/cx/cancel", headers=AUTH)
        assert cancelled.status_code == 200, cancelled.text
        assert cancelled.json()["workflow"]["cancel_requested"] is True
        ended = await client.wait(db, "cx", timeout_s=WAIT_S)
        assert ended["status"] == "cancelled"
        late = await http.post("/api/workflows/cx/cancel", headers=AUTH)
        tally.gate.open.set()
        retried = await http.post("/api/workflows/cx/retry", headers=AUTH)
        assert retried.status_code == 200, retried.text
        done = await client.wait(db, "cx", timeout_s=WAIT_S, min_run=2)
        shown = (await http.get("/api/workflows/cx", headers=AUTH)).json()
    assert (held["workflow"]["status"], held["ocrd_state"]) == ("running", "RUNNING")
    assert [step["status"] for step in held["steps"]] == ["running", "pending"]
    assert (late.status_code, late.json()["error"]["type"]) == (409, "workflow_state_conflict")
    assert done["status"] == "succeeded"
    assert (shown["workflow"]["run"], shown["ocrd_state"]) == (2, "SUCCESS")


async def test_listing_pages_through_workflows_by_status_and_cursor(
    settings: Settings, db: Db, tally: Tally
) -> None:
    """GET /api/workflows lists newest first, filters by status, and follows next_cursor
    through every workflow once."""
    async with serving(settings, wh.registry(tally)) as (_, http):
        for i in range(5):
            body = {"workflow_id": f"l{i}", "steps": FAN[:1]}
            assert (await http.post("/api/workflows", json=body, headers=AUTH)).status_code == 201
        for i in range(5):
            await client.wait(db, f"l{i}", timeout_s=WAIT_S)
        seen: list[str] = []
        cursor = None
        while True:
            params = {"limit": 2, "status": "succeeded", **({"cursor": cursor} if cursor else {})}
            page = (await http.get("/api/workflows", params=params, headers=READ)).json()
            seen += [w["workflow_id"] for w in page["workflows"]]
            if (cursor := page["next_cursor"]) is None:
                break
        failed = (await http.get("/api/workflows?status=failed", headers=READ)).json()
    assert seen == ["l4", "l3", "l2", "l1", "l0"]
    assert failed["workflows"] == []


async def test_a_template_stored_by_put_is_read_and_run_with_params(
    settings: Settings, db: Db, tally: Tally
) -> None:
    """PUT stores a template, GET reads it back, run makes a workflow with the parameter's
    value in its steps; a missing required parameter is 422 and a missing template 404."""
    template = {
        "description": "n items squared",
        "params": {"n": {"description": "how many"}},
        "steps": [{"name": "items", "command": "wf_items", "args": {"n": {"$param": "n"}}}],
    }
    async with serving(settings, wh.registry(tally)) as (_, http):
        put = await http.put("/api/templates/squares", json=template, headers=AUTH)
        got = await http.get("/api/templates/squares", headers=READ)
        listed = (await http.get("/api/templates", headers=READ)).json()["templates"]
        run = {"params": {"n": 4}, "workflow_id": "t1"}
        ran = await http.post("/api/templates/squares/run", json=run, headers=AUTH)
        lacking = await http.post("/api/templates/squares/run", json={}, headers=AUTH)
        absent = await http.post("/api/templates/nothing/run", json={}, headers=AUTH)
        done = await client.wait(db, "t1", timeout_s=WAIT_S)
    assert put.status_code == 200, put.text
    assert got.json()["params"] == {"n": {"description": "how many"}}
    assert {"name": "squares", "description": "n items squared", "source": "stored"} in listed
    assert any(t["name"] == "ocr_document" and t["source"] == "shipped" for t in listed)
    assert ran.status_code == 201, ran.text
    assert done["status"] == "succeeded"
    assert done["result"]["count"] == 4
    assert (lacking.status_code, lacking.json()["error"]["type"]) == (422, "invalid_workflow")
    assert (absent.status_code, absent.json()["error"]["type"]) == (404, "workflow_not_found")


async def test_workflow_writes_need_the_read_write_token(settings: Settings, tally: Tally) -> None:
    """The read-only token may GET workflows and templates but gets 403 for every write; no
    token gets 401."""
    body = {"workflow_id": "ro", "steps": FAN}
    async with serving(settings, wh.registry(tally)) as (_, http):
        writes = [
            await http.post("/api/workflows", json=body, headers=READ),
            await http.post("/api/workflows/ro/cancel", headers=READ),
            await http.put("/api/templates/x", json={"steps": FAN}, headers=READ),
            await http.post("/api/templates/x/run", json={}, headers=READ),
        ]
        reads = [await http.get("/api/workflows", headers=READ),
                 await http.get("/api/templates", headers=READ)]  # fmt: skip
        anonymous = await http.get("/api/workflows")
    assert [w.status_code for w in writes] == [403] * 4
    assert [r.status_code for r in reads] == [200, 200]
    assert anonymous.status_code == 401


async def test_a_workflow_bson_cannot_hold_is_422_and_writes_nothing(
    settings: Settings, db: Db, tally: Tally
) -> None:
    """An argument too large for BSON's integers answers 422 invalid_workflow naming why;
    nothing is written."""
    steps = [{"name": "a", "command": "wf_items", "args": {"n": 2**70}}]
    async with serving(settings, wh.registry(tally)) as (_, http):
        answer = await http.post("/api/workflows", json={"workflow_id": "big", "steps": steps},
                                 headers=AUTH)  # fmt: skip
    assert (answer.status_code, answer.json()["error"]["type"]) == (422, "invalid_workflow")
    assert "cannot be stored as a BSON document" in answer.json()["error"]["message"]
    assert await db.workflows.count_documents({}) == 0
