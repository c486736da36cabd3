"""The CPU pool: results and errors come back; a hung, crashed or cancelled task costs a worker.

Keep-alives, working directories, progress and the workers' lifeline have their own modules
(``test_pool_keepalive``, ``test_pool_cwd``, ``test_pool_progress``, ``test_pool_lifeline``).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import multiprocessing
import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import pytest

from reactor.errors import (
    HandlerFailed,
    InputError,
    PoolClosed,
    PoolError,
    Retry,
    WorkerCrashed,
)
from reactor.errors import JobTimeout as JobTimeoutError
from reactor.pool import CpuPool, KeepAlive
from reactor.pool import cpu as pool_module
from tests.pythonpath import pythonpath
from tests.unit import pool_tasks
from tests.unit.pool_support import (
    all_exited,
    exists,
    exited,
    reports_server,
    watchdog_of,
    watching,
)

PidReports = tuple[int, "asyncio.Queue[int]"]


@pytest.fixture
async def pool() -> AsyncIterator[CpuPool]:
    async with CpuPool(1) as pool:
        yield pool


@pytest.fixture
async def pid_reports() -> AsyncIterator[PidReports]:
    """A local port that tasks report their worker's pid to, and the queue the pids arrive on."""
    reports: asyncio.Queue[int] = asyncio.Queue()

    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        reports.put_nowait(int(await reader.readline()))
        writer.close()
        await writer.wait_closed()

    server = await asyncio.start_server(on_connect, "127.0.0.1", 0)
    yield server.sockets[0].getsockname()[1], reports
    server.close()
    await server.wait_closed()


async def test_returns_the_value(pool: CpuPool) -> None:
    """A task's return value comes back to the caller."""
    assert await pool.run(pool_tasks.echo, {"value": {"a": [1, 2]}}, timeout_s=30) == {"a": [1, 2]}
    assert pool.busy == 0


async def test_starts_lazily_and_sets_thread_limits() -> None:
    """``run`` starts an unstarted pool, and workers run with OMP_THREAD_LIMIT=1."""
    pool = CpuPool(1)
    try:
        assert await pool.run(pool_tasks.environ, {"name": "OMP_THREAD_LIMIT"}, timeout_s=30) == "1"
        assert await pool.run(pool_tasks.environ, {"name": "OMP_NUM_THREADS"}, timeout_s=30) == "1"
    finally:
        await pool.aclose()


async def test_waiters_are_served_in_arrival_order(pool: CpuPool) -> None:
    """With every worker busy, callers get a worker in the order they asked for one."""
    finished: list[int] = []

    async def run(i: int) -> None:
        await pool.run(pool_tasks.echo, {"value": i}, timeout_s=30)
        finished.append(i)

    async with asyncio.TaskGroup() as group:
        for i in range(5):
            group.create_task(run(i))
    assert finished == [0, 1, 2, 3, 4]


async def test_hung_task_is_killed_at_its_timeout(pool: CpuPool, pid_reports: PidReports) -> None:
    """A task that never returns is killed at ``timeout_s``; the pool then serves the next task."""
    port, reports = pid_reports
    hung = asyncio.create_task(
        pool.run(pool_tasks.report_pid_then_spin, {"port": port}, timeout_s=1)
    )
    pid = await reports.get()
    with pytest.raises(JobTimeoutError, match=r"^timeout after 1 s$"):
        await hung
    assert not exists(pid)
    assert await pool.run(pool_tasks.pid, {}, timeout_s=30) != pid
    assert pool.restarts["timeout"] == 1


async def test_timeout_also_kills_subprocesses(pool: CpuPool, pid_reports: PidReports) -> None:
    """A timed-out task's subprocess (tesseract, say) is killed along with its worker."""
    port, reports = pid_reports
    hung = asyncio.create_task(
        pool.run(pool_tasks.start_subprocess_then_spin, {"port": port}, timeout_s=1)
    )
    pidfd = os.pidfd_open(await reports.get())
    try:
        with pytest.raises(JobTimeoutError):
            await hung
        await exited(pidfd)
    finally:
        os.close(pidfd)


async def test_worker_exit_fails_only_its_task() -> None:
    """``os._exit(1)`` fails its own task with WorkerCrashed; concurrent tasks succeed."""
    async with CpuPool(4) as pool:
        results = await asyncio.gather(
            pool.run(pool_tasks.exit_with, {"code": 1}, timeout_s=30),
            *(pool.run(pool_tasks.sleep_then_pid, {"seconds": 0.5}, timeout_s=30) for _ in "abc"),
            return_exceptions=True,
        )
        crashed, *others = results
        assert isinstance(crashed, WorkerCrashed)
        assert crashed.message.endswith("exited with code 1")
        assert all(isinstance(pid, int) for pid in others)
        assert pool.restarts["crash"] == 1
        assert await pool.run(pool_tasks.pid, {}, timeout_s=30) > 0


async def test_killed_worker_names_the_signal(pool: CpuPool) -> None:
    """A worker killed by SIGKILL fails its task with WorkerCrashed naming the signal."""
    with pytest.raises(WorkerCrashed, match=r"killed by signal SIGKILL \(9\); .*out-of-memory"):
        await pool.run(pool_tasks.kill_self, {"signum": signal.SIGKILL}, timeout_s=30)
    assert await pool.run(pool_tasks.echo, {"value": 1}, timeout_s=30) == 1


async def test_workers_are_recycled_after_max_tasks() -> None:
    """Workers are replaced after ``max_tasks_per_worker`` tasks and no task is lost."""
    async with CpuPool(2, max_tasks_per_worker=5) as pool:
        pids = await asyncio.gather(
            *(pool.run(pool_tasks.pid, {}, timeout_s=30) for _ in range(50))
        )
        assert len(set(pids)) > 2
        assert pool.restarts["recycle_tasks"] >= 9
        assert pool.healthy


async def test_worker_over_its_memory_limit_is_recycled() -> None:
    """A worker whose RSS passes ``max_rss_mb`` delivers its result and is then replaced."""
    async with CpuPool(1, max_rss_mb=100) as pool:
        first = await pool.run(pool_tasks.hold_memory, {"mb": 200}, timeout_s=30)
        assert await pool.run(pool_tasks.pid, {}, timeout_s=30) != first
        assert pool.restarts["recycle_memory"] >= 1


@pytest.mark.parametrize("retryable", [False, True])
async def test_job_errors_keep_their_type(pool: CpuPool, retryable: bool) -> None:
    """A JobError raised in the worker is raised in the parent with its type and ``retryable``."""
    with pytest.raises(InputError, match=r"^bad$") as caught:
        await pool.run(pool_tasks.raise_input_error, {"retryable": retryable}, timeout_s=30)
    assert caught.value.retryable is retryable


async def test_retry_keeps_its_delay(pool: CpuPool) -> None:
    """A Retry raised in the worker is raised in the parent with its reason and delay."""
    with pytest.raises(Retry, match=r"^later$") as caught:
        await pool.run(pool_tasks.raise_retry, {}, timeout_s=30)
    assert caught.value.delay_s == 2.5


async def test_other_exceptions_become_handler_failed(pool: CpuPool) -> None:
    """Any other exception becomes HandlerFailed with the original type name and traceback."""
    with pytest.raises(HandlerFailed, match=r"^boom$") as caught:
        await pool.run(pool_tasks.raise_value_error, {}, timeout_s=30)
    assert caught.value.type_name == "builtins.ValueError"
    assert caught.value.remote_traceback is not None
    assert "in raise_value_error" in caught.value.remote_traceback
    assert "ValueError: boom" in caught.value.remote_traceback
    assert pool.restarts["crash"] == 0


async def test_unpicklable_return_value_becomes_handler_failed(pool: CpuPool) -> None:
    """A return value that cannot be pickled becomes HandlerFailed naming its type."""
    with pytest.raises(HandlerFailed, match=r"return value of type builtins\.function could not"):
        await pool.run(pool_tasks.return_lambda, {}, timeout_s=30)
    assert await pool.run(pool_tasks.echo, {"value": 2}, timeout_s=30) == 2


async def test_unpicklable_task_costs_no_worker(pool: CpuPool) -> None:
    """Arguments that cannot be pickled fail the call before a worker is taken."""
    with pytest.raises(HandlerFailed, match="could not be sent to a worker"):
        await pool.run(pool_tasks.echo, {"value": lambda: 1}, timeout_s=30)
    assert pool.busy == 0
    assert await pool.run(pool_tasks.echo, {"value": 3}, timeout_s=30) == 3


async def test_cancelled_run_kills_its_worker(pool: CpuPool, pid_reports: PidReports) -> None:
    """Cancelling ``run`` kills the worker running the task, and the pool keeps serving."""
    port, reports = pid_reports
    running = asyncio.create_task(
        pool.run(pool_tasks.report_pid_then_spin, {"port": port}, timeout_s=None)
    )
    pid = await reports.get()
    pidfd = os.pidfd_open(pid)  # before the cancel: the pool may reap the worker at once
    try:
        running.cancel()
        with pytest.raises(asyncio.CancelledError):
            await running
        await exited(pidfd)
    finally:
        os.close(pidfd)
    assert await pool.run(pool_tasks.pid, {}, timeout_s=30) != pid
    assert pool.restarts["cancel"] == 1


async def test_cancelled_run_kills_the_worker_s_subprocesses_too(pool: CpuPool) -> None:
    """Cancelling ``run`` kills the worker, its subprocess and its watchdog; a new worker serves."""
    async with reports_server() as reports:
        running = asyncio.create_task(
            pool.run(pool_tasks.report_pids_then_spin, {"port": reports.port}, timeout_s=None)
        )
        worker, child = await reports.next()
        async with watching(worker, child, watchdog_of(worker)) as pidfds:
            running.cancel()
            with pytest.raises(asyncio.CancelledError):
                await running
            await all_exited(pidfds, within_s=30)
    assert await pool.run(pool_tasks.pid, {}, timeout_s=30) != worker
    assert pool.restarts["cancel"] == 1


async def test_anyio_cancellation_kills_a_task_under_a_keepalive(pool: CpuPool) -> None:
    """An anyio cancel scope (cancelling again and again) kills the task; it is not an expiry."""
    async with reports_server() as reports, contextlib.AsyncExitStack() as stack:
        run = functools.partial(
            pool.run,
            pool_tasks.report_pids_then_spin,
            {"port": reports.port},
            timeout_s=None,
            keepalive=KeepAlive.lasting(600),
        )
        async with anyio.create_task_group() as group:
            group.start_soon(run)
            worker, child = await reports.next()
            pidfds = await stack.enter_async_context(watching(worker, child))
            group.cancel_scope.cancel()
        await all_exited(pidfds, within_s=30)
    assert pool.restarts["cancel"] == 1
    assert pool.restarts["lease_expired"] == 0
    assert await pool.run(pool_tasks.pid, {}, timeout_s=30) != worker


async def test_worker_whose_watchdog_dies_is_stopped(pool: CpuPool) -> None:
    """A worker never runs unwatched: when its watchdog dies, the pool kills it (WorkerCrashed)."""
    async with reports_server() as reports:
        running = asyncio.create_task(
            pool.run(pool_tasks.report_pids_then_spin, {"port": reports.port}, timeout_s=None)
        )
        worker, child = await reports.next()
        watchdog = watchdog_of(worker)
        async with watching(worker, child) as pidfds:
            os.kill(watchdog, signal.SIGKILL)
            with pytest.raises(WorkerCrashed, match="stopped: its watchdog died"):
                await running
            await all_exited(pidfds, within_s=30)
    assert await pool.run(pool_tasks.echo, {"value": 6}, timeout_s=30) == 6


async def test_workers_ask_the_kernel_to_kill_them_with_their_parent(pool: CpuPool) -> None:
    """Each worker runs with PR_SET_PDEATHSIG set to SIGKILL."""
    assert await pool.run(pool_tasks.pdeathsig, {}, timeout_s=30) == signal.SIGKILL


async def test_cancelled_waiter_gives_up_its_place(pool: CpuPool) -> None:
    """A caller cancelled while waiting for a worker leaves the queue; later callers are served."""
    busy = asyncio.create_task(pool.run(pool_tasks.sleep_then_pid, {"seconds": 0.3}, timeout_s=30))
    waiting = asyncio.create_task(pool.run(pool_tasks.echo, {"value": 1}, timeout_s=30))
    await asyncio.sleep(0)  # let both callers take their places
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert await pool.run(pool_tasks.echo, {"value": 2}, timeout_s=30) == 2
    assert await busy > 0
    assert pool.busy == 0
    assert pool.restarts["cancel"] == 0


async def test_failing_restarts_mark_the_pool_unhealthy(
    pool: CpuPool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While replacement workers fail to start the pool is unhealthy and retries with back-off."""
    monkeypatch.setattr(pool_module, "BACKOFF_S", (0.01, 0.01))
    spawn = pool._spawn
    failed = asyncio.Event()

    async def broken_spawn() -> None:
        failed.set()
        raise PoolError("cannot start")

    monkeypatch.setattr(pool, "_spawn", broken_spawn)
    with pytest.raises(WorkerCrashed):
        await pool.run(pool_tasks.exit_with, {"code": 3}, timeout_s=30)
    await failed.wait()
    assert not pool.healthy
    monkeypatch.setattr(pool, "_spawn", spawn)
    assert await pool.run(pool_tasks.echo, {"value": 4}, timeout_s=30) == 4
    assert pool.healthy


async def test_aclose_leaves_no_worker_alive(pid_reports: PidReports) -> None:
    """``aclose`` kills idle and busy workers (callers get PoolClosed) and reaps them all."""
    port, reports = pid_reports
    pool = CpuPool(2)
    await pool.start()
    pids = set(
        await asyncio.gather(
            *(pool.run(pool_tasks.sleep_then_pid, {"seconds": 0.2}, timeout_s=30) for _ in "ab")
        )
    )
    running = asyncio.create_task(
        pool.run(pool_tasks.report_pid_then_spin, {"port": port}, timeout_s=None)
    )
    assert await reports.get() in pids
    await pool.aclose()
    with pytest.raises(PoolClosed):
        await running
    await pool.aclose()
    assert not any(exists(pid) for pid in pids)
    assert multiprocessing.active_children() == []
    assert not pool.healthy
    with pytest.raises(PoolClosed):
        await pool.run(pool_tasks.pid, {}, timeout_s=30)


async def test_aclose_kills_a_worker_wedged_in_native_code_at_once() -> None:
    """A worker stuck in native code holding the GIL is killed by ``aclose``, with its children."""
    pool = CpuPool(1)
    async with reports_server() as reports:
        running = asyncio.create_task(
            pool.run(pool_tasks.report_pids_then_hold_gil, {"port": reports.port}, timeout_s=None)
        )
        worker, child = await reports.next()
        async with watching(worker, child, watchdog_of(worker)) as pidfds:
            async with asyncio.timeout(pool_module.REAP_WAIT_S):
                await pool.aclose()
            await all_exited(pidfds, within_s=30)
        with pytest.raises(PoolClosed):
            await running
    assert multiprocessing.active_children() == []


async def test_recycled_worker_that_will_not_exit_is_killed_after_the_grace(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A worker asked to exit that cannot (a leftover thread) is killed once the grace ends."""
    monkeypatch.setattr(pool_module, "STOP_GRACE_S", 0.5)
    async with CpuPool(1, max_tasks_per_worker=1) as pool:
        worker = await pool.run(pool_tasks.leak_thread, {"seconds": 60}, timeout_s=30)
        async with watching(worker) as pidfds:
            await all_exited(pidfds, within_s=30)
        assert await pool.run(pool_tasks.pid, {}, timeout_s=30) != worker
        assert pool.restarts["recycle_tasks"] >= 1


def test_worker_log_lines_carry_the_job_context(tmp_path: Path) -> None:
    """A handler's log line inside a worker reaches stdout as JSON with the job's context."""
    script = textwrap.dedent("""
        import asyncio
        from tests.unit import pool_tasks
        from reactor.pool import CpuPool, KeepAlive

        async def main():
            async with CpuPool(1, log_format="json") as pool:
                await pool.run(pool_tasks.log_event, {"event": "inside_worker"}, timeout_s=30,
                               log_context={"job_id": "j1", "command": "ocr", "attempt": 2})

        asyncio.run(main())
    """)
    env = {**os.environ, "PYTHONPATH": pythonpath(os.environ)}
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    lines = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    (line,) = [line for line in lines if line.get("event") == "inside_worker"]
    assert line["job_id"] == "j1"
    assert line["command"] == "ocr"
    assert line["attempt"] == 2
    assert line["detail"] == 7
    assert line["level"] == "info"


async def test_processes_a_task_leaves_running_are_ended_with_it(pool: CpuPool) -> None:
    """A task that starts subprocesses and returns leaves none running: they are killed when the
    task ends, and the parent logs job_left_processes with their count."""
    from structlog.testing import capture_logs

    with capture_logs() as logs:
        pids = await pool.run(pool_tasks.leave_children, {"count": 2}, timeout_s=30)
    assert [pid for pid in pids if exists(pid)] == []
    left = [entry for entry in logs if entry["event"] == "job_left_processes"]
    assert [entry["count"] for entry in left] == [2]
    assert await pool.run(pool_tasks.leave_children, {"count": 0}, timeout_s=30) == []
