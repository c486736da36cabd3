"""One job's life: hold its lease, check it, run its handler where it belongs, record the outcome.

Every job-level failure becomes an outcome (``outcome.py``) and then a result; only a forced
shutdown interrupts this, and that leaves the job to its lease. The pieces live elsewhere: the
lease and its deadline in ``lease.py``, stopping in ``cancel.py``, running alone in
``admission.py``, retry decisions in ``retry.py``, recording in ``recorder.py``.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol

import anyio
from anyio.abc import TaskGroup
from pymongo.errors import PyMongoError

from reactor import joblog, progress, usage, workdir
from reactor.admission import Admission
from reactor.cancel import CancelBoard, Reason, Watch
from reactor.connectivity import Connectivity
from reactor.errors import (
    GaveUp,
    InvalidJob,
    JobError,
    JobRequeued,
    JobTimeout,
    LeaseExpired,
    LeaseLost,
    PoisonJob,
    Retry,
    UnknownCommand,
)
from reactor.finisher import Finisher
from reactor.handler import JobContext, Runs
from reactor.lease import Lease
from reactor.liveness import BLOCKED_LOG_S, RunningHandlers
from reactor.logging import bind_job, get_logger, log_handler_failure
from reactor.model import Job
from reactor.outcome import (
    ABANDONED_HAND_BACK,
    HAND_BACK,
    LOST,
    RELEASE,
    Outcome,
    cancelled,
    failed,
    sort_exception,
    sort_value,
)
from reactor.pool import KeepAlive
from reactor.recorder import Observer, Recorder
from reactor.registry import Handler, Registry
from reactor.store import Store
from reactor.usage import Usage

log = get_logger("reactor.dispatch")


class Pool(Protocol):
    """What dispatch needs of the CPU pool (``reactor.pool.CpuPool``, or ``NoPool``)."""

    async def run(
        self,
        fn: Any,
        kwargs: dict[str, Any],
        *,
        timeout_s: float | None,
        log_context: Mapping[str, Any] | None = None,
        cwd: Path | None = None,
        on_progress: Any = None,
        keepalive: Any = None,
        log_target: joblog.Target | None = None,
        on_usage: Any = None,
    ) -> Any: ...


@dataclass(frozen=True)
class JobSettings:
    """The settings one job's life depends on."""

    jobs_root: Path
    lease_s: float
    heartbeat_s: float
    handler_settings: Mapping[str, Any]
    job_log_max_bytes: int = 0
    progress_interval_s: float = 1.0


@dataclass(frozen=True)
class Parts:
    """The running parts a job's life touches, built once by the service."""

    store: Store
    registry: Registry
    pool: Pool
    observer: Observer
    board: CancelBoard
    admission: Admission
    connectivity: Connectivity
    handlers: RunningHandlers
    finisher: Finisher


class Dispatcher:
    """Runs claimed jobs."""

    def __init__(self, parts: Parts, settings: JobSettings) -> None:
        self.parts = parts
        self.settings = settings
        self.recorder = Recorder(parts.store, parts.observer, parts.finisher)

    async def run(self, job: Job) -> None:
        """Run one claimed job to a recorded outcome (or leave it to its lease)."""
        parts = self.parts
        handler = parts.registry.get(job.command) if isinstance(job.command, str) else None
        stoppable = handler is None or handler.runs is not Runs.THREAD
        with (
            bind_job(job.key, job.command_name, job.attempt, run=job.run),
            parts.board.watch(job, stoppable=stoppable) as watch,
        ):
            lease = Lease(
                parts.store,
                watch,
                lease_s=self.settings.lease_s,
                heartbeat_s=self.settings.heartbeat_s,
                stops_handler=stoppable,
            )
            try:
                async with anyio.create_task_group() as tg:
                    tg.start_soon(lease.keep)
                    target = self._log_target(job, handler)
                    with joblog.capture(target):  # the job's own log: from start to record
                        outcome = await self._attempt(job, handler, watch, lease, tg, target)
                        await self.recorder.record(job, handler, outcome, lease)
                    tg.cancel_scope.cancel()
            finally:
                parts.observer.job_left(job.key, job.command_name)

    def _log_target(self, job: Job, handler: Handler | None) -> joblog.Target | None:
        """Where this run's own log goes: in its job directory, for a job that can run."""
        if handler is None or job.problem is not None or not job.has_job_id:
            return None
        directory = workdir.place(self.settings.jobs_root, job.key, job.workflow).directory
        return joblog.Target(str(joblog.path_of(directory, job.run)),
                             self.settings.job_log_max_bytes)  # fmt: skip

    async def _attempt(
        self,
        job: Job,
        handler: Handler | None,
        watch: Watch,
        lease: Lease,
        tg: TaskGroup,
        log_target: joblog.Target | None,
    ) -> Outcome:
        """This attempt's outcome (``LOST`` when the lease was lost: nothing to record)."""
        early = early_outcome(job, handler, self.parts.registry)
        if early is not None or handler is None:
            return early or LOST
        in_process = handler.runs is not Runs.PROCESS
        explained = self.parts.connectivity.explains(job.expired_lease)
        alone = job.reclaimed and in_process and not explained
        value: Any = None
        error: BaseException | None = None
        costs: list[Usage] = []
        with watch.scope:
            try:
                async with self.parts.admission.run_slot(in_process=in_process, alone=alone):
                    # Marked isolated only once it runs alone: a job still waiting for its turn
                    # when the reactor dies is not the one that killed it.
                    refused = await self._start(job, alone)
                    if refused is not None:
                        return refused
                    value = await self._call(job, handler, lease, tg, costs, log_target)
            except Exception as exc:
                error = exc
        outcome = self._sort(job, handler, watch, value, error)
        return replace(outcome, usage=costs[-1]) if costs and outcome.status else outcome

    async def _start(self, job: Job, alone: bool) -> Outcome | None:
        """Write the start, if one is needed; what to record instead when it cannot be."""
        try:
            await self.parts.store.start(job, isolated=alone)
        except JobRequeued:
            return RELEASE
        except LeaseLost:
            return LOST
        except PyMongoError as exc:
            log.warning("job_start_not_recorded", error=str(exc))
            return HAND_BACK
        return None

    def _sort(
        self, job: Job, handler: Handler, watch: Watch, value: Any, error: BaseException | None
    ) -> Outcome:
        if watch.reason is Reason.REQUEUED:
            return RELEASE  # stopped, or (a thread) waited for: its outcome is not kept
        if watch.scope.cancelled_caught or isinstance(error, LeaseExpired):
            if watch.reason is Reason.CANCEL and watch.request is not None:
                return cancelled(watch.request)
            if watch.reason is Reason.LOST:
                return LOST
            # An abandoned thread runs on until the process exits: its job must not start
            # elsewhere before that (the process is on its way out within seconds).
            return ABANDONED_HAND_BACK if handler.runs is Runs.THREAD else HAND_BACK
        if error is None:
            return sort_value(value)
        if not isinstance(error, JobError | Retry):
            log_handler_failure(log, error, event="handler_raised")
        return sort_exception(error, attempt=job.attempt, policy=handler.retry)

    async def _call(
        self,
        job: Job,
        handler: Handler,
        lease: Lease,
        tg: TaskGroup,
        costs: list[Usage],
        log_target: joblog.Target | None,
    ) -> Any:
        place = workdir.prepare_place(self.settings.jobs_root, job.key, job.workflow)
        directory = place.directory
        kwargs = handler.bind_args(job.args, place)
        if handler.wants_context:
            kwargs["ctx"] = self._context(job, handler, place)
        writer = progress.Writer(
            functools.partial(self.parts.store.progress, job),
            interval_s=self.settings.progress_interval_s,
            on_report=functools.partial(
                self.parts.observer.job_progress, job.key, job.command_name
            ),
            spawn=tg.start_soon,
        )
        self.parts.observer.job_started(job.command_name)
        log.info("job_started", runs=handler.runs.value, reclaimed=job.reclaimed or None)
        with (
            progress.ROUTER.route(job.key, writer.report),
            self.parts.handlers.running(job.key, handler.name, handler.runs.value,
                                        handler.timeout_s),
        ):  # fmt: skip
            if handler.runs is Runs.PROCESS:
                run = PoolCall(handler, kwargs, job, lease, writer, directory, log_target)
                return await self._in_pool(run, costs.append)
            with usage.wall_clock(costs):
                return await self._in_process(handler, kwargs)

    def _context(self, job: Job, handler: Handler, place: workdir.Place) -> JobContext:
        return JobContext(
            job.key,
            handler.name,
            job.attempt,
            place.directory,
            settings=dict(self.settings.handler_settings),
            run=job.run,
            fence=job.fence,
            claim_id=str(job.claim_id),
            root=place.root,
        )

    async def _in_pool(self, run: PoolCall, on_usage: Callable[[Usage], None]) -> Any:
        keepalive = KeepAlive(run.lease.deadline)
        run.lease.on_extend(keepalive.extend)
        job = run.job
        context = {"job_id": job.key, "command": run.handler.name, "attempt": job.attempt,
                   "run": job.run}  # fmt: skip
        return await self.parts.pool.run(
            run.handler.fn,
            run.kwargs,
            timeout_s=run.handler.timeout_s,
            log_context=context,
            cwd=run.directory,
            on_progress=run.writer.report,
            keepalive=keepalive,
            log_target=run.log_target,
            on_usage=on_usage,
        )

    async def _in_process(self, handler: Handler, kwargs: dict[str, Any]) -> Any:
        if handler.runs is Runs.LOOP:
            return await _on_the_loop(handler, kwargs)
        try:
            with anyio.fail_after(handler.timeout_s):
                call = functools.partial(handler.fn, **kwargs)
                return await anyio.to_thread.run_sync(call, abandon_on_cancel=True)
        except TimeoutError:
            raise JobTimeout(handler.timeout_s) from None


@dataclass(frozen=True)
class PoolCall:
    """A process handler's call, as handed to the pool."""

    handler: Handler
    kwargs: dict[str, Any]
    job: Job
    lease: Lease
    writer: progress.Writer
    directory: Path
    log_target: joblog.Target | None


async def _on_the_loop(handler: Handler, kwargs: dict[str, Any]) -> Any:
    """Run a loop handler under its timeout. One that blocks the event loop cannot be cancelled
    while it blocks; if it overran its timeout that way, its value is not kept: the timeout is a
    promise, and the message names the blocking."""
    started = time.monotonic()
    try:
        with anyio.fail_after(handler.timeout_s):
            value = await handler.fn(**kwargs)
    except TimeoutError:
        raise JobTimeout(handler.timeout_s, _blocked(time.monotonic() - started, handler)) from None
    ran_s = time.monotonic() - started
    if ran_s > handler.timeout_s:
        raise JobTimeout(handler.timeout_s, _blocked(ran_s, handler) or "it overran")
    return value


def _blocked(ran_s: float, handler: Handler) -> str | None:
    if ran_s < handler.timeout_s + BLOCKED_LOG_S:
        return None  # stopped on time
    return (
        f"the handler blocked the event loop and ran {ran_s:.1f} s (a loop handler must not "
        "block: use runs='thread' or runs='process' for blocking work)"
    )


def early_outcome(job: Job, handler: Handler | None, registry: Registry) -> Outcome | None:
    """The outcome of a job that must not run at all, or ``None`` (pure)."""
    if job.problem is not None:
        return failed(InvalidJob(job.problem))
    if job.poison:
        return failed(
            PoisonJob(
                "quarantined: the reactor that ran this job alone died while running it, after "
                "an earlier reactor died under it too; `reactor retry` runs it again"
            )
        )
    if job.cancel is not None:
        return cancelled(job.cancel, started=job.reclaimed)
    try:
        found = check_job(job, handler, registry)
    except JobError as exc:
        return failed(exc)
    allowed = found.retry.max_attempts
    if job.attempt > allowed:
        over = f"attempt {job.attempt} is over the {allowed} attempts allowed per run"
        return failed(GaveUp(over))
    return None


def check_job(job: Job, handler: Handler | None, registry: Registry) -> Handler:
    """Raise a clear :class:`JobError` for a malformed job; return its handler."""
    if not job.has_job_id:
        raise InvalidJob(
            f"job has no job_id (a non-empty string); its result is keyed by its _id {job.key}"
        )
    known = ", ".join(registry.names()) or "none"
    if not isinstance(job.command, str) or not job.command:
        raise InvalidJob(f"job has no command (a non-empty string); known commands: {known}")
    if handler is None:
        raise UnknownCommand(f"unknown command {job.command!r}; known commands: {known}")
    if not isinstance(job.args, Mapping):
        raise InvalidJob(
            f"args must be a mapping of named arguments, got {type(job.args).__name__}"
        )
    return handler
