"""A CPU task lasts only as long as its keep-alive: past the deadline it is stopped, not charged."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import AsyncIterator

import pytest

from reactor.errors import LeaseExpired
from reactor.pool import CpuPool, KeepAlive
from reactor.pool import _keepalive as _pool_keepalive
from tests.unit import pool_tasks
from tests.unit.pool_support import all_exited, reports_server, watchdog_of, watching


@pytest.fixture
async def pool() -> AsyncIterator[CpuPool]:
    async with CpuPool(1) as pool:
        yield pool


@contextlib.asynccontextmanager
async def extending(keepalive: KeepAlive, window_s: float) -> AsyncIterator[None]:
    """Extend ``keepalive`` to ``window_s`` from now, every tenth of a second, meanwhile."""

    async def keep_extending() -> None:
        while True:
            keepalive.extend(time.monotonic() + window_s)
            await asyncio.sleep(0.1)

    extender = asyncio.create_task(keep_extending())
    try:
        yield
    finally:
        extender.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await extender


def test_keepalive_moves_only_forward_and_stays_expired() -> None:
    """``extend`` moves the deadline later, never earlier, and does nothing once it passed."""
    moves: list[float] = []
    keepalive = KeepAlive.lasting(60)
    unwatch = keepalive.watch(moves.append)
    first = keepalive.deadline
    assert keepalive.extend(first + 5)
    assert keepalive.extend(first + 1)  # earlier: ignored, but the keep-alive is alive
    assert keepalive.deadline == first + 5
    unwatch()
    assert keepalive.extend(first + 9)
    assert moves == [first + 5]
    expired = KeepAlive(time.monotonic() - 1)
    assert expired.expired
    assert not expired.extend(time.monotonic() + 60)
    assert expired.expired


async def test_task_outliving_its_keepalive_is_stopped_with_its_subprocess(
    pool: CpuPool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past an unextended deadline the worker's watchdog kills it and its subprocess."""
    monkeypatch.setattr(_pool_keepalive, "KEEPALIVE_GRACE_S", 60.0)  # so only the watchdog can act
    async with reports_server() as reports:
        running = asyncio.create_task(
            pool.run(
                pool_tasks.report_pids_then_spin,
                {"port": reports.port},
                timeout_s=None,
                keepalive=KeepAlive.lasting(1.0),
            )
        )
        worker, child = await reports.next()
        async with watching(worker, child) as pidfds:
            with pytest.raises(LeaseExpired, match="stopped at its keep-alive deadline"):
                async with asyncio.timeout(30):
                    await running
            await all_exited(pidfds, within_s=30)
    assert pool.restarts["lease_expired"] == 1
    assert pool.restarts["crash"] == 0
    assert await pool.run(pool_tasks.pid, {}, timeout_s=30) != worker


async def test_extensions_keep_a_task_running_past_its_first_deadline(pool: CpuPool) -> None:
    """A task outlives its first deadline many times over while the keep-alive is extended."""
    keepalive = KeepAlive.lasting(1.0)
    first_deadline = keepalive.deadline
    async with extending(keepalive, window_s=1.0):
        pid = await pool.run(
            pool_tasks.sleep_then_pid, {"seconds": 3.0}, timeout_s=30, keepalive=keepalive
        )
    assert time.monotonic() > first_deadline + 1.0
    assert pid > 0
    assert pool.restarts["lease_expired"] == 0


async def test_expired_keepalive_fails_before_a_worker_is_taken(pool: CpuPool) -> None:
    """A keep-alive already past its deadline raises LeaseExpired and costs no worker."""
    before = await pool.run(pool_tasks.pid, {}, timeout_s=30)
    with pytest.raises(LeaseExpired, match="before the task started"):
        await pool.run(
            pool_tasks.pid, {}, timeout_s=30, keepalive=KeepAlive(time.monotonic() - 0.1)
        )
    assert await pool.run(pool_tasks.pid, {}, timeout_s=30) == before
    assert sum(pool.restarts.values()) == 0


async def test_keepalive_expiring_while_waiting_for_a_worker_gives_up_the_wait(
    pool: CpuPool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A caller whose keep-alive expires in the queue gets LeaseExpired; no worker is harmed."""
    monkeypatch.setattr(_pool_keepalive, "KEEPALIVE_GRACE_S", 0.1)
    busy = asyncio.create_task(pool.run(pool_tasks.sleep_then_pid, {"seconds": 3}, timeout_s=30))
    await asyncio.sleep(0)  # let it take the only worker
    with pytest.raises(LeaseExpired, match="not extended"):
        await pool.run(pool_tasks.pid, {}, timeout_s=30, keepalive=KeepAlive.lasting(0.2))
    assert await busy > 0
    assert sum(pool.restarts.values()) == 0


async def test_reactor_stops_a_task_whose_watchdog_cannot(
    pool: CpuPool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the worker's watchdog frozen, the pool itself stops the task after the deadline."""
    monkeypatch.setattr(_pool_keepalive, "KEEPALIVE_GRACE_S", 0.5)
    async with reports_server() as reports:
        running = asyncio.create_task(
            pool.run(
                pool_tasks.report_pids_then_hold_gil,
                {"port": reports.port},
                timeout_s=None,
                keepalive=KeepAlive.lasting(1.0),
            )
        )
        worker, child = await reports.next()
        watchdog = watchdog_of(worker)
        async with watching(worker, child, watchdog) as pidfds:
            os.kill(watchdog, signal.SIGSTOP)
            with pytest.raises(LeaseExpired, match=r"not extended within 0\.5 s"):
                async with asyncio.timeout(30):
                    await running
            await all_exited(pidfds, within_s=30)
    assert pool.restarts["lease_expired"] == 1
    assert await pool.run(pool_tasks.echo, {"value": 5}, timeout_s=30) == 5
