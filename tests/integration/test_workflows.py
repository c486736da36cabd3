"""Workflows through real reactors: results and files flow downstream, fan-out and join keep
element order, failure cancels what depends on it, a re-run runs only what failed, cancellation
reaches every step, and a bad definition creates no job."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import anyio
import pytest
from pymongo.asynchronous.database import AsyncDatabase

from reactor import workdir
from reactor.config import Settings
from reactor.errors import InvalidWorkflow
from reactor.workflows import client
from tests.integration import workflow_handlers as wh
from tests.integration.jobs_lib import Tally
from tests.integration.reactors import running

Db = AsyncDatabase[dict[str, Any]]
WAIT_S = 60.0


def step(name: str, command: str, **fields: Any) -> dict[str, Any]:
    return {"name": name, "command": command, **fields}


async def run_workflow(db: Db, workflow_id: str, steps: list[dict[str, Any]],
                       **fields: Any) -> dict[str, Any]:  # fmt: skip
    await client.submit(db, {"workflow_id": workflow_id, "steps": steps, **fields})
    return await client.wait(db, workflow_id, timeout_s=WAIT_S)


async def step_job_ids(db: Db, workflow_id: str) -> list[str]:
    return sorted([d["job_id"] async for d in db.jobs.find({"workflow.workflow_id": workflow_id})])


async def test_fan_out_runs_one_job_per_element_and_the_join_gets_them_in_order(
    settings: Settings, db: Db, tally: Tally
) -> None:
    """for_each over seven elements makes seven jobs; the join receives their results in
    element order; the workflow's state counts them and holds the output."""
    steps = [
        step("items", "wf_items", args={"n": 7}),
        step("square", "wf_square", after=["items"], for_each={"$result": "items.items"},
             args={"x": {"$item": "x"}}),
        step("total", "wf_total", after=["square"], args={"values": {"$result": "square"}}),
    ]  # fmt: skip
    async with running(settings, wh.registry(tally)):
        done = await run_workflow(db, "fan", steps)
    assert done["status"] == "succeeded", done.get("error")
    assert done["result"] == {"values": [0, 1, 4, 9, 16, 25, 36], "total": 91}
    assert await step_job_ids(db, "fan") == sorted(
        ["fan.items", "fan.total", *(f"fan.square.{i}" for i in range(7))]
    )
    square = done["step_states"]["square"]
    assert (square["jobs"], square["elements"], square["done"]) == (7, 7, 7)
    assert done["progress"] == {"steps_done": 3, "steps_total": 3, "elements_done": 7,
                                "elements_total": 7}  # fmt: skip
    assert done["finished_at"] >= done["started_at"] >= done["created_at"]


async def test_a_batched_step_gets_lists_and_returns_one_result_per_element(
    settings: Settings, db: Db, tally: Tally
) -> None:
    """batch: 3 over seven elements makes three jobs (3, 3, 1 elements) of list arguments;
    their lists are joined back in element order."""
    steps = [
        step("items", "wf_items", args={"n": 7}),
        step("square", "wf_squares", after=["items"], for_each={"$result": "items.items"},
             batch=3, args={"xs": {"$item": "x"}}),
        step("total", "wf_total", after=["square"], args={"values": {"$result": "square"}}),
    ]  # fmt: skip
    async with running(settings, wh.registry(tally)):
        done = await run_workflow(db, "batch", steps)
    assert done["status"] == "succeeded", done.get("error")
    assert done["result"]["values"] == [0, 1, 4, 9, 16, 25, 36]
    jobs = {d["job_id"]: d async for d in db.jobs.find({"workflow.step": "square"})}
    assert sorted(jobs) == ["batch.square.0", "batch.square.1", "batch.square.2"]
    assert jobs["batch.square.2"]["args"] == {"xs": [6]}
    assert jobs["batch.square.1"]["workflow"]["first"] == 3


async def test_a_step_reads_an_upstream_steps_file_but_not_a_parallel_steps(
    settings: Settings, db: Db, tally: Tally
) -> None:
    """A step reads the file its upstream step wrote (a path relative to the workflow's
    directory); a step reading the directory of a step that is not upstream fails PathEscape."""
    steps = [
        step("write", "wf_write", args={"name": "note.txt", "text": "hello"}),
        step("other", "wf_write", args={"name": "other.txt", "text": "x"}),
        step("read", "wf_read", after=["write"], args={"path": {"$result": "write.path"}}),
    ]
    sneaky = [*steps[:2], step("read", "wf_read", after=["write"],
                                args={"path": "other/other.txt"})]  # fmt: skip
    async with running(settings, wh.registry(tally)):
        done = await run_workflow(db, "files", steps)
        refused = await run_workflow(db, "sneaky", sneaky)
    assert done["status"] == "succeeded", done.get("error")
    assert done["result"]["read"] == {"text": "hello"}
    note = workdir.workflow_dir(settings.jobs_root, "files") / "write" / "note.txt"
    assert note.read_text() == "hello"
    assert refused["status"] == "failed"
    assert refused["error"]["step"] == "read"
    assert "PathEscape" in refused["error"]["message"]
    assert "not upstream" in refused["error"]["message"]


async def test_a_failed_middle_step_cancels_its_dependents_and_a_rerun_runs_only_them(
    settings: Settings, db: Db, tally: Tally
) -> None:
    """The middle step fails: the last step is cancelled without a job and the workflow
    failed. After the input is fixed, a re-run runs the failed and cancelled steps only; the
    first step keeps its result and is not run again."""
    steps = [
        step("first", "wf_count", args={"n": 1}),
        step("middle", "wf_needs", after=["first"], args={"fix": "fix.txt"}),
        step("last", "wf_count", after=["middle"], args={"got": {"$result": "middle"}}),
    ]
    async with running(settings, wh.registry(tally), max_attempts=1):
        failed = await run_workflow(db, "mend", steps)
        assert failed["status"] == "failed"
        assert failed["error"]["type"] == "StepFailed"
        assert failed["error"]["job_id"] == "mend.middle"
        assert "fix.txt is missing" in failed["error"]["message"]
        states = {name: s["status"] for name, s in failed["step_states"].items()}
        assert states == {"first": "succeeded", "middle": "failed", "last": "cancelled"}
        assert await step_job_ids(db, "mend") == ["mend.first", "mend.middle"]
        (workdir.workflow_dir(settings.jobs_root, "mend") / "fix.txt").write_text("mended")
        await client.retry(db, "mend")
        again = await client.wait(db, "mend", timeout_s=WAIT_S, min_run=2)
    assert again["status"] == "succeeded", again.get("error")
    assert again["run"] == 2
    assert again["result"] == {"args": {"got": "mended"}}
    assert tally.runs["mend.first"] == 1
    assert tally.runs["mend.middle"] == 2
    middle = await db.jobs.find_one({"job_id": "mend.middle"})
    assert middle is not None
    assert middle["run"] == 2


async def test_cancelling_a_workflow_cancels_its_running_and_queued_steps(
    settings: Settings, db: Db, tally: Tally
) -> None:
    """Six held elements on a reactor with room for two: cancelling the workflow cancels the
    two running and the four queued jobs, creates nothing after them, and the workflow ends
    cancelled."""
    steps = [
        step("items", "wf_items", args={"n": 6}),
        step("hold", "wf_hold", after=["items"], for_each={"$result": "items.items"}),
        step("after", "wf_count", after=["hold"]),
    ]
    async with running(settings, wh.registry(tally), max_jobs=2):
        await client.submit(db, {"workflow_id": "stop", "steps": steps})
        with anyio.fail_after(WAIT_S):
            await tally.gate.until_waiting(2)
        await client.cancel(db, "stop")
        done = await client.wait(db, "stop", timeout_s=WAIT_S)
    assert done["status"] == "cancelled"
    statuses = [d["status"] async for d in db.jobs.find({"workflow.step": "hold"})]
    assert statuses == ["cancelled"] * 6
    assert done["step_states"]["after"]["status"] == "cancelled"
    assert "stop.after" not in await step_job_ids(db, "stop")


@pytest.mark.parametrize(
    ("steps", "message"),
    [
        ([step("a", "wf_count", after=["b"]), step("b", "wf_count", after=["a"])], "cycle"),
        ([step("a", "transmogrify")], "unknown command 'transmogrify'"),
        ([step("a", "wf_count", args={"x": {"$result": "b"}}), step("b", "wf_count")],
         "not upstream"),
    ],
)  # fmt: skip
async def test_an_invalid_workflow_fails_at_once_and_creates_no_job(
    settings: Settings, db: Db, tally: Tally, steps: list[dict[str, Any]], message: str
) -> None:
    """A cycle, an unknown command or a reference to a step not upstream: the workflow fails
    with the reason and no job is created (inserted directly, past the client's check)."""
    async with running(settings, wh.registry(tally)):
        await db.workflows.insert_one({"workflow_id": "bad", "steps": steps})
        done = await client.wait(db, "bad", timeout_s=WAIT_S)
    assert done["status"] == "failed"
    assert done["error"]["type"] == "InvalidWorkflow"
    assert message in done["error"]["message"]
    assert await db.jobs.count_documents({}) == 0


async def test_the_client_refuses_an_invalid_workflow_before_inserting_it(db: Db) -> None:
    """client.submit checks the definition and inserts nothing when it is wrong."""
    with pytest.raises(InvalidWorkflow, match="cycle"):
        await client.submit(db, {"workflow_id": "x", "steps": [
            step("a", "c", after=["b"]), step("b", "c", after=["a"])]})  # fmt: skip
    assert await db.workflows.count_documents({}) == 0


async def test_a_workflow_inserted_while_no_reactor_runs_is_advanced_at_startup(
    settings: Settings, db: Db, tally: Tally
) -> None:
    """The catch-up at startup finds the waiting workflow and runs it."""
    await db.workflows.insert_one({"workflow_id": "early", "steps": [step("a", "wf_count")]})
    async with running(settings, wh.registry(tally)):
        done = await client.wait(db, "early", timeout_s=WAIT_S)
    assert done["status"] == "succeeded"


async def test_a_step_job_id_held_by_another_job_fails_the_workflow(
    settings: Settings, db: Db, tally: Tally
) -> None:
    """A job of someone else's already named like a step job: the workflow fails naming it."""
    await db.jobs.insert_one({"job_id": "clash.a", "command": "wf_count", "args": {}})
    async with running(settings, wh.registry(tally)):
        done = await run_workflow(db, "clash", [step("a", "wf_count")])
    assert done["status"] == "failed"
    assert "'clash.a' is held by a job" in done["error"]["message"]


async def test_a_stored_template_runs_with_parameters(
    settings: Settings, db: Db, tally: Tally
) -> None:
    """A template stored once runs as a workflow with the parameters given (others default)."""
    template = {
        "name": "squares",
        "params": {"n": {}, "extra": {"default": 10}},
        "steps": [
            step("items", "wf_items", args={"n": {"$param": "n"}}),
            step("square", "wf_square", after=["items"], for_each={"$result": "items.items"},
                 args={"x": {"$item": "x"}}),
            step("total", "wf_total", after=["square"], args={"values": {"$result": "square"}}),
        ],
        "output": {"sum": {"$result": "total.total"}},
    }  # fmt: skip
    async with running(settings, wh.registry(tally)):
        await client.put_template(db, template)
        workflow_id = await client.run_template(db, "squares", {"n": 4})
        done = await client.wait(db, workflow_id, timeout_s=WAIT_S)
    assert done["status"] == "succeeded", done.get("error")
    assert done["result"] == {"sum": 14}
    assert done["template"] == {"name": "squares", "params": {"n": 4, "extra": 10}}


async def test_reactor_workflow_submit_waits_and_prints_the_finished_workflow(
    settings: Settings, db: Db, tally: Tally, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    """reactor workflow submit FILE.yaml --wait exits 0 and prints the workflow with its
    result once a reactor has run it."""
    from reactor.cli import main

    path = tmp_path / "w.yaml"
    path.write_text("workflow_id: cli\nsteps:\n  - name: a\n    command: wf_items\n"
                    "    args: {n: 2}\n")  # fmt: skip
    monkeypatch.setenv("REACTOR_MONGO_URI", settings.mongo_uri)
    monkeypatch.setenv("REACTOR_DB", settings.db)
    async with running(settings, wh.registry(tally)):
        code = await anyio.to_thread.run_sync(
            main, ["workflow", "submit", str(path), "--wait", "--timeout", str(WAIT_S)]
        )
    out = capsys.readouterr().out  # the workflow, indented, among any captured log lines
    block = re.search(r"^\{\n.*?^\}$", out, re.DOTALL | re.MULTILINE)
    assert block is not None, out
    printed = json.loads(block.group(0))
    assert code == 0
    assert printed["status"] == "succeeded"
    assert printed["result"]["count"] == 2
