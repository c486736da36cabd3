"""The pure decisions: what a workflow does next, from its stored documents alone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from reactor.errors import InvalidWorkflow
from reactor.workflows import model
from reactor.workflows.decide import Decision, NeedResults, decide
from reactor.workflows.definition import parse
from reactor.workflows.model import StepJob, Workflow
from reactor.workflows.steps import aggregate

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
OCR = [
    {"name": "split", "command": "split"},
    {
        "name": "ocr",
        "command": "ocr",
        "after": ["split"],
        "for_each": {"$result": "split.pages"},
        "args": {"image": {"$item": ""}, "lang": "eng"},
    },
    {
        "name": "join",
        "command": "join",
        "after": ["ocr"],
        "args": {"texts": {"$result": "ocr.text"}},
    },
]


class World:
    """A workflow document, its step jobs and their results, advanced like the reactor does."""

    def __init__(self, steps: list[dict[str, Any]], **fields: Any) -> None:
        self.doc: dict[str, Any] = {"_id": 1, "workflow_id": "w", "steps": steps, **fields}
        self.jobs: dict[str, StepJob] = {}
        self.results: dict[str, dict[str, Any] | None] = {}
        self.args: dict[str, Any] = {}

    def decide(self, **options: Any) -> Decision:
        try:
            definition: Any = parse(self.doc["steps"], self.doc.get("output"))
        except InvalidWorkflow as exc:
            definition = exc
        found = decide(
            Workflow(self.doc),
            definition,
            list(self.jobs.values()),
            self.results,
            NOW,
            owner="me",
            **options,
        )
        assert isinstance(found, Decision), found
        return found

    def advance(self, **options: Any) -> Decision:
        decision = self.decide(**options)
        for doc in decision.create:
            link = model.Link.from_doc(doc["workflow"])
            assert link is not None
            self.jobs[doc["job_id"]] = StepJob(doc["job_id"], link, "queued")
            self.args[doc["job_id"]] = doc["args"]
        for job_id in decision.cancel:
            self.jobs[job_id] = StepJob(
                self.jobs[job_id].job_id,
                self.jobs[job_id].link,
                self.jobs[job_id].status,
                cancel_requested=True,
            )
        for job_id, _ in decision.requeue:
            self.set(job_id, "queued")
        self.doc.update(decision.set)
        for name in decision.unset:
            self.doc.pop(name, None)
        return decision

    def set(self, job_id: str, status: str, result: Any = None, error: Any = None) -> None:
        job = self.jobs[job_id]
        ended = NOW if status in model.TERMINAL else None
        self.jobs[job_id] = StepJob(
            job_id,
            job.link,
            status,
            job.run + (status == "queued"),
            created_at=NOW - timedelta(seconds=5),
            finished_at=ended,
        )
        if status == "succeeded":
            self.results[job_id] = {"result": result}
        elif status == "failed":
            self.results[job_id] = {"error": error or {"type": "InputError", "message": "bad"}}
        else:
            self.results.pop(job_id, None)


def test_a_new_workflow_creates_only_its_first_step() -> None:
    """The first advance creates the steps without after, and the workflow is queued."""
    world = World(OCR)
    decision = world.advance()
    assert [d["job_id"] for d in decision.create] == ["w.split"]
    assert world.doc["status"] == "queued"
    assert world.doc["step_states"]["ocr"]["status"] == "pending"
    assert world.advance().writes_workflow is False  # nothing changed: nothing to write


def test_for_each_makes_one_job_per_element_in_order_and_the_join_gets_them_in_order() -> None:
    """Split's three pages make three ocr jobs; the join receives the texts in element order."""
    world = World(OCR)
    world.advance()
    world.set("w.split", "succeeded", {"pages": ["p1", "p2", "p3"]})
    created = [d["job_id"] for d in world.advance().create]
    assert created == ["w.ocr.0", "w.ocr.1", "w.ocr.2"]
    assert world.args["w.ocr.1"] == {"image": "p2", "lang": "eng"}
    for i in (2, 0):  # out of order, and the join waits for every element
        world.set(f"w.ocr.{i}", "succeeded", {"text": f"text {i}"})
        assert world.advance().create == ()
    assert world.doc["step_states"]["ocr"]["counts"]["succeeded"] == 2
    assert world.doc["progress"] == {
        "steps_done": 1,
        "steps_total": 3,
        "elements_done": 2,
        "elements_total": 3,
    }
    world.set("w.ocr.1", "succeeded", {"text": "text 1"})
    assert [d["job_id"] for d in world.advance().create] == ["w.join"]
    assert world.args["w.join"] == {"texts": ["text 0", "text 1", "text 2"]}


def test_a_batched_step_hands_lists_over_and_joins_its_lists_back() -> None:
    """batch: 2 over five elements makes three jobs of 2, 2 and 1; their lists join in order."""
    steps = [
        {"name": "split", "command": "split"},
        {
            "name": "ocr",
            "command": "ocr",
            "after": ["split"],
            "batch": 2,
            "for_each": {"$result": "split.pages"},
            "args": {"images": {"$item": "path"}},
        },
        {"name": "join", "command": "join", "after": ["ocr"], "args": {"all": {"$result": "ocr"}}},
    ]
    world = World(steps)
    world.advance()
    world.set("w.split", "succeeded", {"pages": [{"path": f"p{i}"} for i in range(5)]})
    world.advance()
    assert world.args["w.ocr.0"] == {"images": ["p0", "p1"]}
    assert world.args["w.ocr.2"] == {"images": ["p4"]}
    assert world.jobs["w.ocr.2"].link.first == 4
    assert world.jobs["w.ocr.2"].link.count == 1
    for i, names in enumerate([["a", "b"], ["c", "d"], ["e"]]):
        world.set(f"w.ocr.{i}", "succeeded", names)
    world.advance()
    assert world.args["w.join"] == {"all": ["a", "b", "c", "d", "e"]}


def test_a_batched_job_that_does_not_return_one_result_per_element_fails_the_workflow() -> None:
    """A batch of two returning one value fails the workflow naming the job; the join never
    exists."""
    steps = [
        {"name": "a", "command": "a"},
        {"name": "b", "command": "b", "after": ["a"], "batch": 2, "for_each": {"$result": "a"}},
        {"name": "c", "command": "c", "after": ["b"], "args": {"x": {"$result": "b"}}},
    ]
    world = World(steps)
    world.advance()
    world.set("w.a", "succeeded", [1, 2])
    world.advance()
    world.set("w.b.0", "succeeded", {"not": "a list"})
    decision = world.advance()
    assert decision.create == ()
    assert world.doc["status"] == "failed"
    assert "returned dict" in world.doc["error"]["message"]
    assert world.doc["error"]["step"] == "c"
    assert world.doc["step_states"]["c"]["status"] == "failed"


def test_an_empty_for_each_succeeds_at_once_and_its_dependents_go_on() -> None:
    """A fan-out over no element makes no job and its dependents are created in the same pass."""
    world = World(OCR)
    world.advance()
    world.set("w.split", "succeeded", {"pages": []})
    assert [d["job_id"] for d in world.advance().create] == ["w.join"]
    assert world.args["w.join"] == {"texts": []}
    assert world.doc["step_states"]["ocr"]["status"] == "succeeded"


def test_a_failed_middle_step_cancels_its_dependents_and_fails_the_workflow() -> None:
    """One failed element: the other running elements are asked to cancel, the join is
    cancelled without a job, and the workflow is failed, finished once nothing runs."""
    world = World(OCR)
    world.advance()
    world.set("w.split", "succeeded", {"pages": ["p1", "p2", "p3"]})
    world.advance()
    world.set("w.ocr.0", "succeeded", {"text": "a"})
    world.set("w.ocr.1", "failed", error={"type": "InputError", "message": "not an image"})
    world.set("w.ocr.2", "running")
    decision = world.advance()
    assert decision.cancel == ("w.ocr.2",)
    assert world.doc["status"] == "failed"
    assert world.doc["error"] == {
        "type": "StepFailed",
        "message": "InputError: not an image",
        "step": "ocr",
        "job_id": "w.ocr.1",
    }
    assert world.doc["step_states"]["join"]["status"] == "cancelled"
    assert "finished_at" not in world.doc  # w.ocr.2 still runs
    world.set("w.ocr.2", "cancelled")
    world.advance()
    assert world.doc["finished_at"] == NOW
    assert world.doc["status"] == "failed"
    assert "w.join" not in world.jobs


def test_a_rerun_queues_only_failed_and_cancelled_jobs_and_then_creates_the_rest() -> None:
    """After a failure, a re-run request queues the failed and cancelled elements again; the
    succeeded one keeps its result, and the join is created once they succeed."""
    world = World(OCR)
    world.advance()
    world.set("w.split", "succeeded", {"pages": ["p1", "p2", "p3"]})
    world.advance()
    world.set("w.ocr.0", "succeeded", {"text": "a"})
    world.set("w.ocr.1", "failed")
    world.set("w.ocr.2", "cancelled")
    world.advance()
    assert world.doc["status"] == "failed"
    world.doc["status"] = "queued"  # the client's re-run request
    decision = world.advance()
    assert sorted(j for j, _ in decision.requeue) == ["w.ocr.1", "w.ocr.2"]
    assert world.doc["run"] == 2
    assert world.doc["status"] == "running"
    assert "finished_at" not in world.doc
    world.set("w.ocr.1", "succeeded", {"text": "b"})
    world.set("w.ocr.2", "succeeded", {"text": "c"})
    assert [d["job_id"] for d in world.advance().create] == ["w.join"]
    assert world.args["w.join"] == {"texts": ["a", "b", "c"]}


def test_cancelling_a_workflow_cancels_its_unfinished_jobs_and_creates_nothing_more() -> None:
    """cancel_requested: running and queued jobs are asked to cancel, pending steps end
    cancelled, the workflow is cancelled at once and finished when its jobs are."""
    world = World(OCR)
    world.advance()
    world.set("w.split", "running")
    world.doc["cancel_requested"] = True
    decision = world.advance()
    assert decision.cancel == ("w.split",)
    assert decision.create == ()
    assert world.doc["status"] == "cancelled"
    assert world.doc["step_states"]["ocr"]["status"] == "cancelled"
    world.set("w.split", "succeeded", {"pages": ["p"]})  # it finished before the cancel landed
    assert world.advance().create == ()
    assert world.doc["status"] == "cancelled"
    assert world.doc["finished_at"] == NOW


def test_the_output_is_resolved_when_every_step_succeeded_and_a_callback_is_due() -> None:
    """A finished workflow carries its output and, with a callback_url, a pending delivery."""
    world = World([{"name": "a", "command": "a"}], callback_url="http://127.0.0.1:9/x")
    world.advance()
    world.set("w.a", "succeeded", {"n": 1})
    world.advance()
    assert world.doc["status"] == "succeeded"
    assert world.doc["result"] == {"n": 1}
    assert world.doc["callback"]["id"] == "workflow:w:1"
    assert world.doc["callback"]["state"] == "pending"
    assert world.doc["callback"]["owner"] == "me"
    assert world.advance().writes_workflow is False


def test_an_invalid_definition_fails_at_once_without_any_job() -> None:
    """A cycle fails the workflow on its first advance, with the reason, and creates nothing."""
    world = World(
        [
            {"name": "a", "command": "a", "after": ["b"]},
            {"name": "b", "command": "b", "after": ["a"]},
        ]
    )
    decision = world.advance()
    assert decision.create == ()
    assert world.doc["status"] == "failed"
    assert world.doc["error"]["type"] == "InvalidWorkflow"
    assert "cycle" in world.doc["error"]["message"]
    assert world.doc["finished_at"] == NOW


def test_a_job_id_held_by_another_job_fails_the_workflow() -> None:
    """A step job id already taken by a job outside the workflow fails it, creating nothing."""
    world = World(OCR)
    decision = world.advance(taken=frozenset({"w.split"}))
    assert decision.create == ()
    assert world.doc["status"] == "failed"
    assert "held by a job" in world.doc["error"]["message"]


def test_results_are_asked_for_only_when_a_step_needs_them() -> None:
    """Creating the fan-out needs split's result: without it the decision asks for it."""
    world = World(OCR)
    world.advance()
    world.set("w.split", "succeeded", {"pages": ["p"]})
    world.results.clear()
    found = decide(Workflow(world.doc), parse(OCR), list(world.jobs.values()), {}, NOW, owner="me")
    assert found == NeedResults(frozenset({"w.split"}))


@pytest.mark.parametrize(
    ("counts", "status"),
    [
        ({"succeeded": 2, "failed": 1}, "failed"),
        ({"succeeded": 2, "cancelled": 1, "running": 1}, "cancelled"),
        ({"succeeded": 3}, "succeeded"),
        ({"succeeded": 1, "queued": 2}, "running"),
        ({"running": 1, "queued": 1}, "running"),
        ({"queued": 3}, "queued"),
    ],
)
def test_a_steps_state_is_its_jobs_aggregate(counts: dict[str, int], status: str) -> None:
    """Failed beats cancelled beats running; succeeded only when every job did."""
    assert aggregate(counts).value == status
