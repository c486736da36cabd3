"""Pool workers and their subprocesses die with their reactor, and stop when it freezes.

Each test runs a stand-in reactor (``tests.unit.pool_parent``) in its own process, kills or
freezes that process with a real signal, and watches the worker's pids through pidfds. Tasks
either spin in Python or sleep in native code holding the GIL, which no thread of the worker can
interrupt.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

from tests.pythonpath import pythonpath
from tests.unit.pool_parent import KEEPALIVE_S, SAYS
from tests.unit.pool_support import all_exited, reports_server, watchdog_of, watching

GONE_WITHIN_S = 1.0  # the promise: no worker, and nothing it started, outlives its reactor more
BUSY_TASKS = ["report_pids_then_spin", "report_pids_then_hold_gil"]


@asynccontextmanager
async def stand_in_reactor(
    mode: str, task: str, port: int
) -> AsyncIterator[asyncio.subprocess.Process]:
    """``python -m tests.unit.pool_parent MODE TASK PORT`` running; killed and reaped on exit.

    Its standard output is read to the end on the way out: every process that shares it (the
    pool's workers, their subprocesses) must be gone for that end to come.
    """
    parent = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.unit.pool_parent",
        mode,
        task,
        str(port),
        env={**os.environ, "PYTHONPATH": pythonpath(os.environ)},
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        yield parent
    finally:
        with contextlib.suppress(ProcessLookupError):  # (it may be reaped already)
            parent.kill()  # SIGKILL ends a stopped process too
        assert parent.stdout is not None
        async with asyncio.timeout(60):
            await parent.stdout.read()
            await parent.wait()


async def said(parent: asyncio.subprocess.Process) -> dict[str, Any]:
    """The next fact the stand-in reactor prints."""
    assert parent.stdout is not None
    async with asyncio.timeout(60):
        while True:
            line = (await parent.stdout.readline()).decode()
            if not line:
                raise EOFError("the stand-in reactor ended without saying more")
            if line.startswith(SAYS):
                fact: dict[str, Any] = json.loads(line.removeprefix(SAYS))
                return fact


def state(pid: int) -> str:
    """The process state letter from ``/proc/PID/stat`` (``T``: stopped)."""
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().rsplit(")", 1)[1].split()[0]


@pytest.mark.parametrize("task", BUSY_TASKS)
async def test_sigkill_of_the_reactor_kills_its_busy_worker_and_subprocess(task: str) -> None:
    """SIGKILL of the reactor while its worker runs a task: worker and subprocess gone in 1 s."""
    async with reports_server() as reports, stand_in_reactor("busy", task, reports.port) as parent:
        worker, child = await reports.next()
        async with watching(worker, child, watchdog_of(worker)) as pidfds:
            parent.kill()
            await all_exited(pidfds, within_s=GONE_WITHIN_S)


async def test_sigkill_of_the_reactor_kills_its_idle_worker() -> None:
    """SIGKILL of the reactor while its worker waits for work: the worker is gone within 1 s."""
    task = "report_pid_then_return"
    async with reports_server() as reports, stand_in_reactor("idle", task, reports.port) as parent:
        (worker,) = await reports.next()
        assert await said(parent) == {"idle": worker}
        async with watching(worker, watchdog_of(worker)) as pidfds:
            parent.kill()
            await all_exited(pidfds, within_s=GONE_WITHIN_S)


async def test_kernel_kills_the_worker_even_if_its_watchdog_cannot_act() -> None:
    """With its watchdog frozen, a worker still dies with its reactor (PR_SET_PDEATHSIG)."""
    task = "report_pids_then_hold_gil"
    async with reports_server() as reports, stand_in_reactor("busy", task, reports.port) as parent:
        worker, child = await reports.next()
        watchdog = watchdog_of(worker)
        async with watching(worker) as pidfds, watching(child, watchdog):
            os.kill(watchdog, signal.SIGSTOP)
            parent.kill()
            await all_exited(pidfds, within_s=GONE_WITHIN_S)


@pytest.mark.parametrize("task", BUSY_TASKS)
async def test_frozen_reactor_s_worker_stops_at_its_keepalive_deadline(task: str) -> None:
    """SIGSTOP of the reactor: its worker and subprocess stop at the deadline; then LeaseExpired."""
    async with (
        reports_server() as reports,
        stand_in_reactor("keepalive", task, reports.port) as parent,
    ):
        worker, child = await reports.next()
        async with watching(worker, child) as pidfds:
            os.kill(parent.pid, signal.SIGSTOP)
            try:
                await all_exited(pidfds, within_s=KEEPALIVE_S + 30)
                assert state(parent.pid) == "T"  # so the reactor did not do it
            finally:
                os.kill(parent.pid, signal.SIGCONT)
        outcome, restarts, after = [await said(parent) for _ in range(3)]
        async with asyncio.timeout(60):
            assert await parent.wait() == 0
    assert outcome["outcome"] == "LeaseExpired"
    assert restarts["restarts"]["lease_expired"] == 1
    assert restarts["restarts"]["crash"] == 0
    assert after == {"next": 42}
