"""A CPU process pool that hung or crashing native code cannot wedge; it dies with its reactor.

Why our own: ``concurrent.futures.ProcessPoolExecutor`` cannot kill a hung task, breaks every
pending future when one worker dies (``BrokenProcessPool``) and hangs with ``max_tasks_per_child``
when work is queued; pebble has no memory-based recycling, and its shared task queue makes killing
one specific worker racy. Here every worker has its own duplex pipe and the parent hands a task only
to an idle worker, so every outcome (a value, an error, a timeout, a death) belongs to one task.

Waiting never polls: a caller waits for an idle worker on a future in a FIFO queue, and for the
reply on ``loop.add_reader`` over the worker's pipe; the worker's death is seen through a pidfd
(or the process sentinel). A worker is killed with SIGKILL to its process group, so a subprocess
it started (tesseract) dies with it; a replacement is started in the background, with back-off
while starting fails. Workers are recycled between tasks, never while they hold one.

No worker outlives its reactor or its job's lease. Each worker forks a small watchdog process
into its process group (``_watchdog``). It holds a lifeline, a socket whose other end only
the reactor holds, and kills the group (the worker and all it started) when the reactor is gone,
SIGKILL included, when the worker is gone, or when the task's :class:`KeepAlive` deadline passes
without an extension. The pool enforces that deadline too, ``KEEPALIVE_GRACE_S`` later, and
kills a worker whose watchdog died. A task may run in a working directory of its own, and its
``ctx.progress`` reports reach the caller (``reactor.pool._courier``).
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import pickle
from collections import deque
from collections.abc import Callable, Coroutine, Mapping
from os import PathLike
from types import TracebackType
from typing import Any, Final

from reactor import joblog
from reactor.errors import (
    JobTimeout,
    LeaseExpired,
    PoolClosed,
    PoolError,
    ReactorError,
    WorkerCrashed,
)
from reactor.logging import LogFormat, get_logger
from reactor.pool import _keepalive as _pool_keepalive
from reactor.pool._handle import WorkerProcess, describe_exit
from reactor.pool._keepalive import KeepAlive, LeaseWatch
from reactor.pool._protocol import PROGRESS, Reply, decode_progress, handler_failed
from reactor.usage import Usage

__all__ = ["RESTART_REASONS", "CpuPool", "KeepAlive", "ProgressCallback"]

RESTART_REASONS: Final = (
    "crash",
    "timeout",
    "cancel",
    "lease_expired",
    "recycle_tasks",
    "recycle_memory",
)
START_TIMEOUT_S: Final = 60.0  # a worker that is not ready by then counts as a failed start
STOP_GRACE_S: Final = 5.0  # how long a recycled worker may take to exit before it is killed
REAP_WAIT_S: Final = 10.0  # how long a caller waits for a killed worker to be reaped
BACKOFF_S: Final = (0.5, 30.0)  # first and longest pause between failed starts

ProgressCallback = Callable[[float, "str | None"], None]

_log = get_logger("reactor.pool")


class CpuPool:
    """``workers`` processes (spawned, not forked) that run one picklable function at a time."""

    def __init__(
        self,
        workers: int,
        *,
        max_tasks_per_worker: int = 100,
        max_rss_mb: int = 1024,
        log_format: LogFormat = "json",
        log_level: str = "info",
        log_show_locals: bool = False,
        log_max_line_bytes: int = 2048,
    ) -> None:
        if workers < 1 or max_tasks_per_worker < 1 or max_rss_mb < 1:
            raise ValueError("workers, max_tasks_per_worker and max_rss_mb must be positive")
        self._size = workers
        self._max_tasks = max_tasks_per_worker
        self._max_rss_bytes = max_rss_mb * 2**20
        self._worker_args: tuple[Any, ...] = (
            log_format,
            log_level,
            log_show_locals,
            log_max_line_bytes,
        )
        self._context = multiprocessing.get_context("spawn")
        self._idle: deque[WorkerProcess] = deque()
        self._busy: set[WorkerProcess] = set()
        self._live: set[WorkerProcess] = set()  # started and not yet reaped
        self._waiters: deque[asyncio.Future[WorkerProcess]] = deque()
        self._tasks: set[asyncio.Task[None]] = set()  # burials and refills
        self._refills: set[asyncio.Task[None]] = set()
        self._failing = 0  # refills whose latest start failed
        self._restarts = dict.fromkeys(RESTART_REASONS, 0)
        self._start_lock = asyncio.Lock()
        self._started = False
        self._closed = False

    @property
    def workers(self) -> int:
        return self._size

    @property
    def busy(self) -> int:
        return len(self._busy)

    @property
    def healthy(self) -> bool:
        """Not closed, and no worker slot is failing to start."""
        return not self._closed and self._failing == 0

    @property
    def restarts(self) -> Mapping[str, int]:
        """Replaced workers by reason (see ``RESTART_REASONS``)."""
        return dict(self._restarts)

    async def __aenter__(self) -> CpuPool:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def start(self) -> None:
        """Start the workers and wait until they are ready (``run`` does this when needed)."""
        async with self._start_lock:
            if self._closed:
                raise PoolClosed("the CPU pool is closed")
            if not self._started:
                for worker in await self._spawn_all():
                    self._release(worker)
                self._started = True

    async def aclose(self) -> None:
        """Kill every worker (callers of a running task get PoolClosed) and reap them; idempotent.

        Idle workers hold nothing worth a grace period, so they are killed like busy ones;
        this returns within ``REAP_WAIT_S`` even if a process cannot be reaped.
        """
        if not self._closed:
            self._closed = True
            for waiter in self._waiters:
                if not waiter.done():
                    waiter.set_exception(PoolClosed("the CPU pool is closed"))
            self._waiters.clear()
            for refill in self._refills:
                refill.cancel()
            self._idle.clear()
            for worker in list(self._live):
                self._kill(worker)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + REAP_WAIT_S
        while self._tasks:  # asyncio.wait, unlike gather, leaves them running if we are cancelled
            await asyncio.wait(list(self._tasks), timeout=max(0.0, deadline - loop.time()))
            if self._tasks and loop.time() >= deadline:  # stuck in the kernel (state D)
                _log.error("pool_workers_not_reaped", pids=sorted(w.pid for w in self._live))
                return

    async def run(
        self,
        fn: Callable[..., Any],
        kwargs: dict[str, Any],
        *,
        timeout_s: float | None,
        log_context: Mapping[str, Any] | None = None,
        keepalive: KeepAlive | None = None,
        cwd: str | PathLike[str] | None = None,
        on_progress: ProgressCallback | None = None,
        log_target: joblog.Target | None = None,
        on_usage: Callable[[Usage], None] | None = None,
    ) -> Any:
        """Run ``fn(**kwargs)`` in a worker and return its value.

        ``timeout_s`` counts from when a worker takes the task; past it the worker is killed and
        :class:`JobTimeout` raised. With ``keepalive``, the task (and the wait for a worker)
        lasts only while the keep-alive does: past its deadline the worker kills itself and
        this raises :class:`LeaseExpired`. ``cwd``: the worker's working directory for this
        task only (:class:`WorkdirUnavailable` if it cannot enter it). ``on_progress(fraction,
        message)`` is called on the event loop for the task's ``ctx.progress`` reports, the
        latest one always before this returns. A worker's death raises :class:`WorkerCrashed`;
        cancelling this kills the worker and its subprocesses. ``log_target``: the job's own log
        (:mod:`reactor.joblog`); ``on_usage(usage)``: what the task cost, called before this
        returns or raises the task's own error (never after a timeout or a death).
        """
        task = _encode_task(fn, kwargs, log_context, cwd, log_target)
        if keepalive is not None and keepalive.expired:
            raise LeaseExpired(f"the keep-alive expired before the task started ({keepalive!r})")
        if not self._started:
            await self.start()
        with LeaseWatch(keepalive) as lease:
            try:
                async with lease.scope:
                    worker, seq = await self._send(task, lease)
                    data = await self._outcome(worker, seq, timeout_s, lease, on_progress)
            except TimeoutError:
                if not lease.fired:
                    raise
                grace_s = _pool_keepalive.KEEPALIVE_GRACE_S
                raise LeaseExpired(
                    f"the keep-alive was not extended within {grace_s:g} s after its deadline; "
                    "the task was stopped"
                ) from None
        return self._finish(worker, data, on_usage)

    async def _send(self, task: bytes, lease: LeaseWatch) -> tuple[WorkerProcess, int]:
        """Hand ``task`` to an idle worker; one found dead meanwhile is replaced, not blamed."""
        while True:
            worker = await self._acquire()
            if not worker.exited.is_set():
                try:
                    seq = worker.send_task(task, lease.deadline)
                except OSError:
                    pass
                else:
                    lease.forward_to(worker, seq)
                    return worker, seq
            self._retire(worker, "crash")

    async def _outcome(
        self,
        worker: WorkerProcess,
        seq: int,
        timeout_s: float | None,
        lease: LeaseWatch,
        on_progress: ProgressCallback | None,
    ) -> bytes:
        """The worker's reply to task ``seq``; its failure to give one, as the error it is."""
        try:
            async with asyncio.timeout(timeout_s):
                return await self._reply(worker, seq, on_progress)
        except TimeoutError:
            assert timeout_s is not None
            await self._lose(worker, "timeout")
            raise JobTimeout(timeout_s) from None
        except EOFError:
            expired = worker.expired(seq)
            await self._lose(worker, "lease_expired" if expired else "crash")
            raise self._death_error(worker, expired) from None
        except BaseException:  # cancelled: the worker may be in the middle of the task
            self._retire(worker, "lease_expired" if lease.fired else "cancel")
            raise

    def _death_error(self, worker: WorkerProcess, expired: bool) -> ReactorError:
        """What the death of a (reaped) worker during its task means for the caller."""
        if expired:
            return LeaseExpired(
                f"worker process {worker.pid} was stopped at its keep-alive deadline"
            )
        if self._closed:
            return PoolClosed("the CPU pool was closed while the task ran")
        if worker.unwatched:
            return WorkerCrashed(f"worker process {worker.pid} was stopped: its watchdog died")
        return WorkerCrashed(describe_exit(worker.pid, worker.exitcode))

    async def _reply(
        self, worker: WorkerProcess, seq: int, on_progress: ProgressCallback | None
    ) -> bytes:
        """Pass progress reports on until the reply comes; ``EOFError`` if the worker dies."""
        while True:
            message = await worker.receive()
            if message[:1] != PROGRESS:
                return message[1:]
            report = decode_progress(message[1:])
            if report.seq == seq and on_progress is not None:
                try:
                    on_progress(report.fraction, report.message)
                except Exception as exc:  # a report must never break the task
                    _log.warning("progress_callback_failed", error=repr(exc))

    def _finish(
        self, worker: WorkerProcess, data: bytes, on_usage: Callable[[Usage], None] | None
    ) -> Any:
        worker.tasks_done += 1
        try:
            reply: Reply = pickle.loads(data)
        except Exception as exc:  # e.g. the value's class cannot be imported here
            self._recycle_or_release(worker, rss_bytes=0)
            raise handler_failed(f"the reply could not be read: {exc}", exc) from exc
        self._recycle_or_release(worker, reply.rss_bytes)
        if reply.left_processes:
            _log.warning("job_left_processes", count=reply.left_processes, pid=worker.pid,
                         note="processes the job started and left running were killed")  # fmt: skip
        if on_usage is not None and reply.usage is not None:
            on_usage(reply.usage)
        if not reply.ok:
            raise reply.value
        return reply.value

    def _recycle_or_release(self, worker: WorkerProcess, rss_bytes: int) -> None:
        if worker.tasks_done >= self._max_tasks:
            self._retire(worker, "recycle_tasks", grace_s=STOP_GRACE_S)
        elif rss_bytes > self._max_rss_bytes:
            self._retire(worker, "recycle_memory", grace_s=STOP_GRACE_S)
        else:
            self._release(worker)

    async def _acquire(self) -> WorkerProcess:
        """An idle worker, waiting in FIFO order for one if all are busy."""
        if self._closed:
            raise PoolClosed("the CPU pool is closed")
        if self._idle and not self._waiters:
            worker = self._idle.popleft()
            self._busy.add(worker)
            return worker
        waiter: asyncio.Future[WorkerProcess] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            return await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
                self._release(waiter.result())  # handed over just as we were cancelled
            elif waiter in self._waiters:
                self._waiters.remove(waiter)
            raise

    def _release(self, worker: WorkerProcess) -> None:
        """Give a worker that holds no task to the first waiter, or make it idle."""
        self._busy.discard(worker)
        if self._closed:
            self._kill(worker)
            return
        if worker.exited.is_set():
            self._retire(worker, "crash")
            return
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(worker)
                self._busy.add(worker)
                return
        self._idle.append(worker)

    def _worker_exited(self, worker: WorkerProcess) -> None:
        if worker in self._idle:  # died with no task (killed from outside): just replace it
            self._idle.remove(worker)
            self._retire(worker, "crash")

    async def _lose(self, worker: WorkerProcess, reason: str) -> None:
        """Retire a worker that failed its task, and wait (bounded) until it is reaped."""
        await asyncio.wait([self._retire(worker, reason)], timeout=REAP_WAIT_S)

    def _retire(
        self, worker: WorkerProcess, reason: str, grace_s: float = 0.0
    ) -> asyncio.Task[None]:
        """Stop a worker (killed now unless ``grace_s``) and start a replacement; idempotent."""
        self._busy.discard(worker)
        if worker.burial is not None:
            return worker.burial
        if not self._closed:
            self._restarts[reason] += 1
            log = _log.warning if reason in ("crash", "timeout") else _log.info
            log("pool_worker_retired", pid=worker.pid, reason=reason, tasks_done=worker.tasks_done)
            refill = self._background(self._refill())
            self._refills.add(refill)
            refill.add_done_callback(self._refills.discard)
        if not grace_s:
            worker.kill()  # now, not in a task that might never run if the loop is shutting down
        return self._bury(worker, grace_s)

    def _bury(self, worker: WorkerProcess, grace_s: float = 0.0) -> asyncio.Task[None]:
        if worker.burial is None:
            worker.burial = self._background(self._stop(worker, grace_s))
        return worker.burial

    async def _stop(self, worker: WorkerProcess, grace_s: float) -> None:
        try:
            await worker.stop(grace_s)
        finally:
            self._live.discard(worker)

    async def _refill(self) -> None:
        """Start one replacement worker, backing off while starting fails."""
        failures = 0
        try:
            while True:
                try:
                    worker = await self._spawn()
                except Exception as exc:
                    failures += 1
                    if failures == 1:
                        self._failing += 1
                    pause_s = min(BACKOFF_S[0] * 2 ** (failures - 1), BACKOFF_S[1])
                    _log.error("pool_worker_start_failed", error=str(exc), retry_in_s=pause_s)
                    await asyncio.sleep(pause_s)
                else:
                    self._release(worker)
                    return
        finally:
            if failures:
                self._failing -= 1

    async def _spawn_all(self) -> list[WorkerProcess]:
        results = await asyncio.gather(
            *(self._spawn() for _ in range(self._size)), return_exceptions=True
        )
        workers = [result for result in results if isinstance(result, WorkerProcess)]
        errors = [result for result in results if isinstance(result, BaseException)]
        if errors:
            for worker in workers:
                self._bury(worker, grace_s=STOP_GRACE_S)
            raise PoolError(f"cannot start the CPU pool: {errors[0]}") from errors[0]
        return workers

    async def _spawn(self) -> WorkerProcess:
        """Start one worker process and wait until it is ready."""
        worker = WorkerProcess.start(self._context, self._worker_exited, *self._worker_args)
        self._live.add(worker)
        try:
            async with asyncio.timeout(START_TIMEOUT_S):
                await worker.wait_ready()
        except EOFError:
            await asyncio.wait([self._kill(worker)], timeout=REAP_WAIT_S)
            raise PoolError(
                f"{describe_exit(worker.pid, worker.exitcode)} while starting"
            ) from None
        except TimeoutError:
            self._kill(worker)
            raise PoolError(
                f"worker process {worker.pid} was not ready within {START_TIMEOUT_S:g} s"
            ) from None
        except BaseException:
            self._kill(worker)
            raise
        _log.debug("pool_worker_started", pid=worker.pid)
        return worker

    def _kill(self, worker: WorkerProcess) -> asyncio.Task[None]:
        worker.kill()
        return self._bury(worker)

    def _background(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task


def _encode_task(
    fn: Callable[..., Any],
    kwargs: dict[str, Any],
    log_context: Mapping[str, Any] | None,
    cwd: str | PathLike[str] | None,
    log_target: joblog.Target | None = None,
) -> bytes:
    """Pickle a task before a worker is taken, so a bad task costs no worker."""
    where = None if cwd is None else os.fspath(cwd)
    task = (fn, kwargs, dict(log_context or {}), where, log_target)
    try:
        return pickle.dumps(task)
    except Exception as exc:
        raise handler_failed(f"the task could not be sent to a worker process: {exc}", exc) from exc
