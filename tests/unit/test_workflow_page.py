"""What a workflow's page says about its steps (reactor.web.ui.workflow): live states from the
step jobs' counts, a fan-out's elements done, and the jobs table in step order."""

from __future__ import annotations

from typing import Any

from reactor.web.ui import dag, workflow
from reactor.workflows import live


def row(step: str, status: str | None, jobs: int, elements: int, of: int) -> dict[str, Any]:
    """One row of ``queries.step_counts``."""
    return {"_id": {"step": step, "status": status}, "jobs": jobs, "elements": elements, "of": of}


def test_a_claimed_step_job_shows_its_step_running_before_the_workflow_is_written() -> None:
    """step_states still say queued; the jobs say one runs: the step is running."""
    stored = {"ocr": {"status": "queued", "jobs": 1, "elements": 1, "done": 0}}
    found = live.live_states(stored, [row("ocr", "running", 1, 1, 1)])
    assert found["ocr"]["status"] == "running"


def test_a_fan_out_counts_elements_and_jobs_still_to_be_made() -> None:
    """Three of five jobs exist (two succeeded, one queued): running, elements unknown until
    all exist; once all exist, elements and done are summed over the jobs' elements."""
    partial = live.live_states({}, [row("ocr", "succeeded", 2, 4, 5), row("ocr", None, 1, 2, 5)])
    assert partial["ocr"]["status"] == "running"
    assert (partial["ocr"]["jobs"], partial["ocr"]["elements"], partial["ocr"]["done"]) == (
        3,
        None,
        4,
    )
    whole = live.live_states({}, [row("ocr", "succeeded", 5, 10, 5)])
    assert (whole["ocr"]["status"], whole["ocr"]["elements"], whole["ocr"]["done"]) == (
        "succeeded", 10, 10
    )  # fmt: skip


def test_a_step_without_jobs_keeps_its_stored_state() -> None:
    """A step cancelled after a halt has no jobs: it stays cancelled; one never seen is absent."""
    stored = {"last": {"status": "cancelled", "jobs": 0}, "junk": "x"}
    assert live.live_states(stored, []) == {"last": {"status": "cancelled", "jobs": 0}}


def test_a_fan_out_box_says_how_many_elements_are_done() -> None:
    """'3/12 done' with the fraction for its bar, failed jobs named; before its list is read
    it says so."""
    assert workflow.elements({"elements": 12, "done": 3, "counts": {}}) == ("3/12 done", 0.25)
    assert workflow.elements({"elements": 4, "done": 2, "counts": {"failed": 1}})[0] == (
        "2/4 done, 1 failed"
    )
    assert workflow.elements({"status": "pending"}) == ("fan-out: list not read yet", None)


def test_a_box_links_a_one_job_step_to_its_job_and_shortens_long_names() -> None:
    """A one-job step's box links to <workflow_id>.<step>; a fan-out's does not; a long name
    is cut with an ellipsis (the whole name is its tooltip)."""
    steps = [{"name": "s" * 40, "command": "c"}, {"name": "f", "command": "c", "for_each": [1]}]
    laid = dag.layout(steps)
    states = {"s" * 40: {"status": "running", "jobs": 1}, "f": {"status": "queued", "jobs": 1}}
    one, fan = (workflow.box(n, "w 1", steps, states) for n in laid.nodes)
    assert one.href == f"/ui/jobs/w%201.{'s' * 40}"
    assert one.label == "s" * 23 + "…"
    assert (fan.href, fan.state) == (None, "queued")


def test_the_jobs_table_follows_the_steps_then_the_element_index() -> None:
    """Job ids sort 'w.b.10' before 'w.b.2'; the table orders by step, then index."""
    laid = dag.layout([{"name": "a"}, {"name": "b", "after": ["a"]}])
    jobs = [{"job_id": f"w.b.{i}", "status": "queued", "workflow": {"step": "b", "index": i}}
            for i in (10, 2)]  # fmt: skip
    jobs.append({"job_id": "w.a", "workflow": {"step": "a", "index": None}})
    assert [r["job_id"] for r in workflow.step_rows(jobs, laid)] == ["w.a", "w.b.2", "w.b.10"]


def test_an_unfinished_workflow_stored_queued_reads_running_once_a_step_runs() -> None:
    """Stored queued with a step running now: running; a finished or failed one keeps its
    stored status, and queued steps leave it queued."""
    running = {"a": {"status": "running"}}
    assert live.live_status({"status": "queued"}, running) == "running"
    assert live.live_status({}, {"a": {"status": "succeeded"}, "b": {"status": "queued"}}) == (
        "running"
    )
    assert live.live_status({"status": "queued"}, {"a": {"status": "queued"}}) == "queued"
    assert live.live_status({"status": "failed", "finished_at": 1}, running) == "failed"
    assert live.live_status({"status": "queued", "finished_at": 1}, running) == "queued"
