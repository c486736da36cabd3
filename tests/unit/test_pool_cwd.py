"""A CPU task runs in the working directory it is given, and only that task does."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from reactor.errors import HandlerFailed, WorkdirUnavailable
from reactor.pool import CpuPool
from tests.unit import pool_tasks


@pytest.fixture
async def pool() -> AsyncIterator[CpuPool]:
    async with CpuPool(1) as pool:
        yield pool


async def test_relative_paths_land_in_the_task_s_cwd(pool: CpuPool, tmp_path: Path) -> None:
    """``open("out.txt", "w")`` in a task given ``cwd`` writes into that directory."""
    kwargs = {"name": "out.txt", "text": "hello"}
    ran_in = await pool.run(pool_tasks.write_relative, kwargs, timeout_s=30, cwd=tmp_path)
    assert ran_in == str(tmp_path)
    assert (tmp_path / "out.txt").read_text() == "hello"


async def test_the_worker_returns_to_its_own_directory_after_each_task(
    pool: CpuPool, tmp_path: Path
) -> None:
    """After a task with ``cwd`` (that returned, raised, or moved elsewhere) the next has none."""
    home = await pool.run(pool_tasks.cwd, {}, timeout_s=30)
    assert home == os.getcwd()
    await pool.run(pool_tasks.cwd, {}, timeout_s=30, cwd=tmp_path)
    assert await pool.run(pool_tasks.cwd, {}, timeout_s=30) == home
    with pytest.raises(HandlerFailed, match="boom"):
        await pool.run(pool_tasks.raise_value_error, {}, timeout_s=30, cwd=tmp_path)
    assert await pool.run(pool_tasks.cwd, {}, timeout_s=30) == home
    assert await pool.run(pool_tasks.chdir_to, {"path": "/"}, timeout_s=30, cwd=tmp_path) == "/"
    assert await pool.run(pool_tasks.cwd, {}, timeout_s=30) == home


async def test_a_missing_cwd_fails_the_task_not_the_worker(pool: CpuPool, tmp_path: Path) -> None:
    """A ``cwd`` that does not exist fails the task with WorkdirUnavailable; the worker stays."""
    worker = await pool.run(pool_tasks.pid, {}, timeout_s=30)
    missing = tmp_path / "gone"
    with pytest.raises(WorkdirUnavailable, match="cannot enter the job directory") as caught:
        await pool.run(pool_tasks.pid, {}, timeout_s=30, cwd=missing)
    assert str(missing) in caught.value.message
    assert "No such file or directory" in caught.value.message
    assert caught.value.retryable
    assert await pool.run(pool_tasks.pid, {}, timeout_s=30) == worker
    assert sum(pool.restarts.values()) == 0
