"""One job's life: hold its lease, check it, run its handler where it belongs, record the outcome.

Every job-level failure becomes an outcome (``outcome.py``) and then a result; only a forced
shutdown interrupts this, and that leaves the job to its lease. The pieces live elsewhere: the
lease and its deadline in ``lease.py``, stopping in ``cancel.py``, running alone in
``isolation.py``, retry decisions in ``retry.py``, recording in ``recorder.py``.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import anyio
from anyio.abc import TaskGroup
from pymongo.errors import PyMongoError

from reactor import progress, workdir
from reactor.cancel import CancelBoard, Reason, Watch
from reactor.errors import (
    GaveUp,
    HandlerFailed,
    InvalidJob,
    JobError,
    JobTimeout,
    LeaseExpired,
    LeaseLost,
    PoisonJob,
    Retry,
    UnknownCommand,
)
from reactor.handler import JobContext, Runs
from reactor.isolation import Isolation, Outages
from reactor.lease import Lease
from reactor.liveness import Liveness, running_entry
from reactor.logging import bind_job, get_logger, log_handler_failure
from reactor.model import Job
from reactor.outcome import (
    ABANDONED_HAND_BACK,
    HAND_BACK,
    Outcome,
    cancelled,
    failed,
    sort_exception,
    sort_value,
)
from reactor.recorder import Observer, Recorder
from reactor.registry import Handler, Registry
from reactor.retry import RetryPolicy
from reactor.store import Store

log = get_logger("reactor.dispatch")


class Pool(Protocol):
    """What dispatch needs of the CPU pool (``reactor.pool.CpuPool``)."""

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
    ) -> Any: ...


@dataclass(frozen=True)
class Limits:
    """The settings one job's life depends on."""

    jobs_root: Path
    default_timeout_s: float
    lease_s: float
    heartbeat_s: float
    retry: RetryPolicy  # the reactor's defaults, complete
    handler_settings: Mapping[str, Any]
    progress_interval_s: float = 1.0


class Dispatcher:
    """Runs claimed jobs."""

    def __init__(
        self,
        store: Store,
        registry: Registry,
        pool: Pool | None,
        observer: Observer,
        limits: Limits,
        *,
        board: CancelBoard,
        isolation: Isolation,
        liveness: Liveness | None = None,
        outages: Outages | None = None,
    ) -> None:
        self.store = store
        self.registry = registry
        self.pool = pool
        self.observer = observer
        self.limits = limits
        self.board = board
        self.isolation = isolation
        self.outages = outages if outages is not None else Outages(store.lease_s)
        self.liveness = liveness
        self.recorder = Recorder(store, observer)

    async def run(self, job: Job) -> None:
        """Run one claimed job to a recorded outcome (or leave it to its lease)."""
        with (
            bind_job(job.key, job.command_name, job.attempt, run=job.run),
            self.board.watch(job) as watch,
        ):
            handler = self.registry.get(job.command) if isinstance(job.command, str) else None
            self.observer.job_started(job.command_name)
            log.info("job_started", runs=handler.runs.value if handler else None,
                     reclaimed=job.reclaimed or None)  # fmt: skip
            lease = Lease(self.store, watch, lease_s=self.limits.lease_s,
                          heartbeat_s=self.limits.heartbeat_s)  # fmt: skip
            lease.stops_handler = handler is None or handler.runs is not Runs.THREAD
            try:
                async with anyio.create_task_group() as tg:
                    tg.start_soon(lease.keep)
                    outcome = await self._attempt(job, handler, watch, lease, tg)
                    if outcome is not None:
                        await self.recorder.record(job, handler, outcome, lease)
                    tg.cancel_scope.cancel()
            finally:
                self.observer.job_left(job.key, job.command_name)

    def policy(self, handler: Handler | None) -> RetryPolicy:
        defaults = self.limits.retry
        declared = handler.options.retry_policy if handler is not None else RetryPolicy()
        return declared.with_defaults(
            defaults.attempts, defaults.backoff_s or 0.0, defaults.max_backoff_s or 0.0
        )

    async def _attempt(
        self, job: Job, handler: Handler | None, watch: Watch, lease: Lease, tg: TaskGroup
    ) -> Outcome | None:
        """This attempt's outcome; ``None`` when the lease was lost (nothing to record)."""
        early = early_outcome(job, handler, self.registry, self.policy(handler))
        if early is not None or handler is None:
            return early
        in_process = handler.runs is not Runs.PROCESS
        alone = job.reclaimed and in_process and not self.outages.explain(job.expired_lease)
        value: Any = None
        error: BaseException | None = None
        with watch.scope:
            try:
                async with self.isolation.slot(in_process=in_process, alone=alone):
                    # Marked isolated only once it runs alone: a job still waiting for its turn
                    # when the reactor dies is not the one that killed it.
                    started = await self._start(job, alone)
                    if not isinstance(started, bool):
                        return started
                    value = await self._call(job, handler, lease, tg)
            except Exception as exc:
                error = exc
        return self._sort(job, handler, watch, value, error)

    async def _start(self, job: Job, alone: bool) -> Outcome | bool | None:
        """Write the start, if one is needed: True, or what to record instead (``None``: the
        lease is lost, record nothing)."""
        try:
            await self.store.start(job, isolated=alone)
        except LeaseLost:
            return None
        except PyMongoError as exc:
            log.warning("job_start_not_recorded", error=str(exc)[:300])
            return HAND_BACK
        return True

    def _sort(
        self, job: Job, handler: Handler, watch: Watch, value: Any, error: BaseException | None
    ) -> Outcome | None:
        if watch.scope.cancelled_caught or isinstance(error, LeaseExpired):
            if watch.reason is Reason.CANCEL and watch.request is not None:
                return cancelled(watch.request)
            if watch.reason is Reason.LOST:
                return None
            # An abandoned thread runs on until the process exits: its job must not start
            # elsewhere before that (the process is on its way out within seconds).
            return ABANDONED_HAND_BACK if handler.runs is Runs.THREAD else HAND_BACK
        if error is None:
            return sort_value(value)
        if not isinstance(error, JobError | Retry):
            log_handler_failure(log, error, event="handler_raised")
        return sort_exception(error, attempt=job.attempt, policy=self.policy(handler))

    async def _call(self, job: Job, handler: Handler, lease: Lease, tg: TaskGroup) -> Any:
        directory = workdir.prepare(self.limits.jobs_root, job.key)
        kwargs = handler.bind_args(job.args, directory)
        if handler.wants_context:
            kwargs["ctx"] = JobContext(
                job.key,
                handler.name,
                job.attempt,
                directory,
                settings=dict(self.limits.handler_settings),
                run=job.run,
                fence=job.fence,
            )
        writer = progress.Writer(
            functools.partial(self.store.progress, job),
            interval_s=self.limits.progress_interval_s,
            on_report=functools.partial(self.observer.job_progress, job.key, job.command_name),
            spawn=tg.start_soon,
        )
        progress.ROUTER.add(job.key, writer.report)
        timeout_s = handler.options.timeout_s or self.limits.default_timeout_s
        entry = running_entry(job.key, handler.name, handler.runs.value, timeout_s)
        if self.liveness is not None:
            self.liveness.running[id(entry)] = entry
        try:
            return await self._invoke(handler, kwargs, timeout_s, job, lease, writer, directory)
        finally:
            progress.ROUTER.remove(job.key, writer.report)
            if self.liveness is not None:
                self.liveness.running.pop(id(entry), None)

    async def _invoke(
        self,
        handler: Handler,
        kwargs: dict[str, Any],
        timeout_s: float,
        job: Job,
        lease: Lease,
        writer: progress.Writer,
        directory: Path,
    ) -> Any:
        if handler.runs is Runs.PROCESS:
            if self.pool is None:
                raise HandlerFailed("no CPU pool is running", type_name="reactor.PoolMissing")
            from reactor.pool import KeepAlive

            keepalive = KeepAlive(lease.deadline)
            lease.on_extend(keepalive.extend)
            context = {"job_id": job.key, "command": handler.name, "attempt": job.attempt}
            return await self.pool.run(
                handler.fn,
                kwargs,
                timeout_s=timeout_s,
                log_context=context,
                cwd=directory,
                on_progress=writer.report,
                keepalive=keepalive,
            )
        try:
            with anyio.fail_after(timeout_s):
                if handler.runs is Runs.LOOP:
                    return await handler.fn(**kwargs)
                call = functools.partial(handler.fn, **kwargs)
                return await anyio.to_thread.run_sync(call, abandon_on_cancel=True)
        except TimeoutError:
            raise JobTimeout(timeout_s) from None


def early_outcome(
    job: Job, handler: Handler | None, registry: Registry, policy: RetryPolicy
) -> Outcome | None:
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
        return cancelled(job.cancel)
    try:
        check_job(job, handler, registry)
    except JobError as exc:
        return failed(exc)
    if job.attempt > policy.attempts:
        return failed(
            GaveUp(f"attempt {job.attempt} is over the {policy.attempts} attempts allowed per run")
        )
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
