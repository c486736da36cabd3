"""``ctx.progress`` in a CPU task reaches the caller in order, the latest one before the reply."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from reactor.handler import JobContext
from reactor.pool import CpuPool
from tests.unit import pool_tasks
from tests.unit.pool_support import reports_server

Reports = list[tuple[float, "str | None"]]


@pytest.fixture
async def pool() -> AsyncIterator[CpuPool]:
    async with CpuPool(1) as pool:
        yield pool


def context(job_id: str, tmp_path: Path) -> JobContext:
    return JobContext(job_id=job_id, command="progress", attempt=1, workdir=tmp_path)


def recorder(seen: Reports) -> Callable[[float, str | None], None]:
    def record(fraction: float, message: str | None) -> None:
        seen.append((fraction, message))

    return record


async def test_progress_arrives_in_order_and_the_latest_before_the_reply(
    pool: CpuPool, tmp_path: Path
) -> None:
    """Reports come in the order made (later ones may replace earlier), the last one first."""
    seen: Reports = []
    kwargs = {"ctx": context("j", tmp_path), "steps": 40, "pause_s": 0.005}
    on_progress = recorder(seen)
    result = await pool.run(pool_tasks.report_steps, kwargs, timeout_s=60, on_progress=on_progress)
    assert result == "done"
    assert seen[-1] == (1.0, "step 40")
    fractions = [fraction for fraction, _ in seen]
    assert fractions == sorted(set(fractions))
    assert all(message == f"step {round(fraction * 40)}" for fraction, message in seen)


async def test_progress_is_seen_while_the_task_still_runs(pool: CpuPool, tmp_path: Path) -> None:
    """A report reaches the caller while the task is running, not only with its reply."""
    halfway = asyncio.Event()

    def on_progress(fraction: float, message: str | None) -> None:
        if (fraction, message) == (0.5, "half way"):
            halfway.set()

    async with reports_server() as reports:
        kwargs = {"ctx": context("j", tmp_path), "port": reports.port}
        running = asyncio.create_task(
            pool.run(pool_tasks.report_then_wait, kwargs, timeout_s=60, on_progress=on_progress)
        )
        await reports.next()
        async with asyncio.timeout(30):
            await halfway.wait()
        assert not running.done()
        reports.release_all()
        assert await running == "released"


async def test_a_flood_of_reports_is_coalesced_and_cannot_stall_the_task(
    pool: CpuPool, tmp_path: Path
) -> None:
    """100,000 reports, a slow callback: the task finishes; few reports, the last one last."""
    seen: Reports = []

    def slow(fraction: float, message: str | None) -> None:
        seen.append((fraction, message))
        time.sleep(0.01)  # a callback that blocks the loop a little each time

    kwargs = {"ctx": context("j", tmp_path), "count": 100_000}
    done = await pool.run(pool_tasks.flood_progress, kwargs, timeout_s=60, on_progress=slow)
    assert done == "done"
    assert seen[-1] == (1.0, "last")
    assert len(seen) < 10_000


async def test_a_failing_progress_callback_does_not_fail_the_task(
    pool: CpuPool, tmp_path: Path
) -> None:
    """An exception in ``on_progress`` is logged and the task's own result still comes back."""

    def broken(fraction: float, message: str | None) -> None:
        raise RuntimeError("callback bug")

    kwargs = {"ctx": context("j", tmp_path), "steps": 3, "pause_s": 0}
    assert await pool.run(pool_tasks.report_steps, kwargs, timeout_s=60, on_progress=broken) == (
        "done"
    )


async def test_reports_left_behind_by_a_task_never_reach_the_next_one(
    pool: CpuPool, tmp_path: Path
) -> None:
    """A thread an earlier task left reporting is dropped, between tasks and during the next."""
    first: Reports = []
    await pool.run(
        pool_tasks.report_from_leftover_thread,
        {"ctx": context("old", tmp_path)},
        timeout_s=60,
        on_progress=recorder(first),
    )
    second: Reports = []
    stale_meanwhile = await pool.run(
        pool_tasks.report_while_stale_reports_arrive,
        {"ctx": context("new", tmp_path), "stale": 50},
        timeout_s=60,
        on_progress=recorder(second),
    )
    assert stale_meanwhile >= 50
    assert second
    assert all(message == "fresh" for _, message in second)
    assert second[-1] == (1.0, "fresh")
