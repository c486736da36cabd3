"""Client writes that take a running job away: replace, delete and re-insert, status queued.

No execution's outcome outlives its claim: a replaced or re-inserted job records the new
execution's result, never the old one's, and the old execution stops at once; a job set back to
queued while it runs is run again, never by two executions at once.
"""

from __future__ import annotations

import time
from typing import Any

import anyio
import pytest
from pymongo.asynchronous.database import AsyncDatabase

from reactor.client import new_job, wait_for_result
from reactor.config import Settings
from reactor.handler import handler
from reactor.registry import Registry, build_handler
from tests.integration.lifecycle_lib import wait_for_doc
from tests.integration.reactors import running

Db = AsyncDatabase[dict[str, Any]]
Span = tuple[str, float, float]  # (tag, start, end) of one execution, on time.monotonic()


class Executions:
    """What the test's ``tagged`` handler ran, per test (never a module global)."""

    def __init__(self) -> None:
        self.spans: list[Span] = []
        self.started = anyio.Event()

    def registry(self) -> Registry:
        async def tagged(tag: str, seconds: float) -> dict[str, str]:
            start = time.monotonic()
            self.started.set()
            try:
                await anyio.sleep(seconds)
            finally:
                self.spans.append((tag, start, time.monotonic()))
            return {"tag": tag}

        @handler(runs="thread")
        def tagged_thread(tag: str, seconds: float) -> dict[str, str]:
            start = time.monotonic()
            anyio.from_thread.run_sync(self.started.set)
            time.sleep(seconds)  # a thread cannot be stopped: it runs to its end
            self.spans.append((tag, start, time.monotonic()))
            return {"tag": tag}

        @handler(timeout_s=1)
        async def blocking(seconds: float) -> str:
            time.sleep(seconds)  # noqa: ASYNC251 (blocks the event loop: the mistake under test)
            return "done"

        handlers = {"tagged": tagged, "tagged_thread": tagged_thread, "blocking": blocking}
        return Registry(build_handler(name, fn) for name, fn in handlers.items())

    def ended(self, tag: str) -> float:
        return next(end for name, _, end in self.spans if name == tag)


@pytest.fixture
def executions() -> Executions:
    return Executions()


def _tagged(job_id: str, tag: str, seconds: float, command: str = "tagged") -> dict[str, Any]:
    return new_job(command, {"tag": tag, "seconds": seconds}, job_id)


async def test_a_replaced_running_job_records_the_new_execution(
    settings: Settings, db: Db, executions: Executions
) -> None:
    """replace_one on a running job: the old execution stops within a second and the job ends
    with the new document's result, one result in all."""
    async with running(settings, executions.registry()):
        await db.jobs.insert_one(_tagged("r1", "old", 60))
        await executions.started.wait()
        replaced = time.monotonic()
        await db.jobs.replace_one({"job_id": "r1"}, _tagged("r1", "new", 0.2))
        result = await wait_for_result(db, "r1", timeout_s=30)
        job = await wait_for_doc(
            db.jobs, "r1", lambda d: d.get("status") == "succeeded", timeout_s=10
        )
    assert result["result"] == {"tag": "new"}
    assert (result["fence"], result["claim_id"]) == (job["fence"], job["claim_id"])
    assert executions.ended("old") - replaced < 1.0
    assert await db.results.count_documents({"job_id": "r1"}) == 1


async def test_a_job_deleted_and_inserted_again_records_the_new_execution(
    settings: Settings, db: Db, executions: Executions
) -> None:
    """delete + insert of a running job's job_id: the old execution stops within a second and the
    new document's execution writes the one result."""
    async with running(settings, executions.registry()):
        await db.jobs.insert_one(_tagged("d1", "old", 60))
        await executions.started.wait()
        gone = time.monotonic()
        await db.jobs.delete_one({"job_id": "d1"})
        await db.jobs.insert_one(_tagged("d1", "new", 0.2))
        result = await wait_for_result(db, "d1", timeout_s=30)
    assert result["result"] == {"tag": "new"}
    assert executions.ended("old") - gone < 1.0
    assert await db.results.count_documents({"job_id": "d1"}) == 1


@pytest.mark.parametrize("command", ["tagged", "tagged_thread"], ids=["loop", "thread"])
async def test_a_running_job_set_back_to_queued_runs_again_never_twice_at_once(
    settings: Settings, db: Db, executions: Executions, command: str
) -> None:
    """status queued on a running job with two reactors: the running execution stops (a thread,
    which cannot be stopped, is waited for) and gives its lease up, and the job runs again,
    never by two executions at once."""
    registry = executions.registry()
    async with running(settings, registry), running(settings, registry):
        await db.jobs.insert_one(_tagged("q1", "once", 2, command))
        await executions.started.wait()
        await db.jobs.update_one({"job_id": "q1"}, {"$set": {"status": "queued"}})
        result = await wait_for_result(db, "q1", timeout_s=30)
    spans = sorted(executions.spans, key=lambda span: span[1])
    assert len(spans) == 2
    assert spans[0][2] <= spans[1][1], f"two executions overlapped: {spans}"
    assert spans[1][2] - spans[1][1] >= 1.9  # the second ran to its end
    assert (result["status"], result["run"], result["fence"]) == ("succeeded", 1, 2)


async def test_a_loop_handler_that_blocks_past_its_timeout_ends_as_a_timeout(
    settings: Settings, db: Db, executions: Executions
) -> None:
    """A loop handler that blocks the event loop past its timeout cannot be stopped, but its
    value is not kept: the job ends JobTimeout with a message that names the blocking."""
    async with running(settings, executions.registry()):
        await db.jobs.insert_one(new_job("blocking", {"seconds": 2.5}, "b1"))
        result = await wait_for_result(db, "b1", timeout_s=30)
    assert (result["status"], result["error"]["type"]) == ("failed", "JobTimeout")
    assert "blocked the event loop" in result["error"]["message"]


async def test_a_refused_result_leaves_a_minimal_failed_result(
    settings: Settings, db: Db, double: Any, executions: Executions
) -> None:
    """MongoDB refuses the result document with a hard error: a minimal failed result
    (ResultRefused, without the value) is written, so the final job still has one result."""
    async with running(settings, executions.registry()):
        double.fail_next(
            1,
            code=121,
            commands=["update"],
            collections=["results"],
            message="Document failed validation",
        )
        await db.jobs.insert_one(_tagged("v1", "refused", 0))
        result = await wait_for_result(db, "v1", timeout_s=30)
        job = await wait_for_doc(db.jobs, "v1", lambda d: d.get("status") == "failed", timeout_s=10)
    assert (result["status"], result["error"]["type"]) == ("failed", "ResultRefused")
    assert "Document failed validation" in result["error"]["message"]
    assert "result" not in result
    assert job["status"] == "failed"


async def test_when_the_minimal_result_is_refused_too_the_job_carries_the_outcome(
    settings: Settings, db: Db, double: Any, executions: Executions
) -> None:
    """Both the result and the minimal failed result are refused: the job document alone ends
    failed with the refusal in its ``error`` field, and no result is written."""
    async with running(settings, executions.registry()):
        double.fail_next(
            2,
            code=121,
            commands=["update"],
            collections=["results"],
            message="Document failed validation",
        )
        await db.jobs.insert_one(_tagged("v2", "refused", 0))
        job = await wait_for_doc(db.jobs, "v2", lambda d: d.get("status") == "failed", timeout_s=30)
    assert job["error"]["type"] == "ResultRefused"
    assert await db.results.count_documents({"job_id": "v2"}) == 0
