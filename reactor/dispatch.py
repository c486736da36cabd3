"""One job's life: check it, run its handler where it belongs, sort the outcome, record it.

Every job-level failure becomes a failed result; only infrastructure failures (MongoDB gone
while finishing) escape, and those leave the job running so its lease expires and it is re-run.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import anyio
import bson

from reactor import workdir
from reactor.errors import (
    GaveUp,
    HandlerFailed,
    InvalidJob,
    JobError,
    JobTimeout,
    LeaseLost,
    ResultNotStorable,
    Retry,
    UnknownCommand,
)
from reactor.handler import JobContext, Runs
from reactor.logging import bind_job, get_logger
from reactor.model import ErrorInfo, Job, Result, Status
from reactor.registry import Handler, Registry
from reactor.store import Store, utcnow

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
    ) -> Any: ...


class Observer(Protocol):
    """Receives outcomes (the metrics)."""

    def job_started(self, command: str) -> None: ...
    def job_finished(self, command: str, status: Status, duration_s: float) -> None: ...
    def job_retried(self, command: str) -> None: ...
    def lease_lost(self) -> None: ...


@dataclass(frozen=True)
class Outcome:
    """How a job ended, before it is written."""

    status: Status
    value: Any = None
    error: ErrorInfo | None = None
    retry: bool = False


def sort_outcome(
    exc: BaseException | None, value: Any, *, attempt: int, max_attempts: int
) -> Outcome:
    """Turn a handler's return value or exception into an outcome (pure)."""
    if exc is None:
        return Outcome(Status.SUCCEEDED, value=value)
    if isinstance(exc, Retry):
        if attempt < max_attempts:
            return Outcome(Status.QUEUED, retry=True)
        gave_up = GaveUp(f"retry requested ({exc.reason}) but all {max_attempts} attempts are used")
        return Outcome(Status.FAILED, error=ErrorInfo.from_exception(gave_up))
    return Outcome(Status.FAILED, error=ErrorInfo.from_exception(exc))


def ensure_storable(value: Any) -> None:
    """Raise :class:`ResultNotStorable` unless ``value`` can be a BSON field."""
    try:
        bson.encode({"result": value})
    except (bson.errors.InvalidDocument, OverflowError, TypeError) as exc:
        raise ResultNotStorable(
            f"return value of type {type(value).__name__} cannot be stored as BSON: {exc}"
        ) from None


class Dispatcher:
    """Runs claimed jobs."""

    def __init__(
        self,
        store: Store,
        registry: Registry,
        pool: Pool | None,
        observer: Observer,
        *,
        jobs_root: Any,
        default_timeout_s: float,
        max_attempts: int,
        heartbeat_s: float,
        handler_settings: dict[str, Any],
    ) -> None:
        self.store = store
        self.registry = registry
        self.pool = pool
        self.observer = observer
        self.jobs_root = jobs_root
        self.default_timeout_s = default_timeout_s
        self.max_attempts = max_attempts
        self.heartbeat_s = heartbeat_s
        self.handler_settings = handler_settings

    async def run(self, job: Job) -> None:
        """Run one claimed job to a recorded outcome (or leave it to its lease)."""
        with bind_job(job.key, job.command_name, job.attempt):
            handler = self.registry.get(job.command) if isinstance(job.command, str) else None
            self.observer.job_started(job.command_name)
            log.info("job_started", runs=handler.runs.value if handler else None)
            try:
                outcome = await self._run_with_heartbeat(job, handler)
            except anyio.get_cancelled_exc_class():
                await self._release_on_shutdown(job)
                raise
            if outcome is not None:
                await self._record(job, handler, outcome)

    async def _release_on_shutdown(self, job: Job) -> None:
        """Cancelled mid-run (shutdown past its drain): hand the job back instead of waiting
        for its lease to expire."""
        with anyio.CancelScope(shield=True), anyio.move_on_after(5):
            try:
                await self.store.requeue(job)
                log.warning("job_released")
            except Exception as exc:
                log.warning("job_release_failed", error=str(exc))

    async def _run_with_heartbeat(self, job: Job, handler: Handler | None) -> Outcome | None:
        lost = anyio.Event()
        outcome: Outcome | None = None
        async with anyio.create_task_group() as tg:
            tg.start_soon(self._heartbeat, job, lost, tg.cancel_scope)
            outcome = await self._execute(job, handler)
            tg.cancel_scope.cancel()
        return None if lost.is_set() else outcome

    async def _execute(self, job: Job, handler: Handler | None) -> Outcome:
        max_attempts = self._max_attempts(handler)
        try:
            value = await self._call(job, handler, max_attempts)
            ensure_storable(value)
        except Exception as exc:
            if not isinstance(exc, JobError | Retry):
                log.warning("handler_raised", exc_info=exc)
            return sort_outcome(exc, None, attempt=job.attempt, max_attempts=max_attempts)
        return sort_outcome(None, value, attempt=job.attempt, max_attempts=max_attempts)

    async def _call(self, job: Job, handler: Handler | None, max_attempts: int) -> Any:
        checked = check_job(job, handler, self.registry)
        if job.attempt > max_attempts:
            raise GaveUp(
                f"job was claimed {job.attempt} times, over its {max_attempts} attempts "
                "(did it crash or time out the reactor each time?)"
            )
        directory = workdir.prepare(self.jobs_root, job.key)
        kwargs = checked.bind_args(job.args, directory)
        if checked.wants_context:
            kwargs["ctx"] = JobContext(
                job.key, checked.name, job.attempt, directory, settings=dict(self.handler_settings)
            )
        timeout_s = checked.options.timeout_s or self.default_timeout_s
        return await self._invoke(checked, kwargs, timeout_s, job)

    async def _invoke(
        self, handler: Handler, kwargs: dict[str, Any], timeout_s: float, job: Job
    ) -> Any:
        if handler.runs is Runs.PROCESS:
            if self.pool is None:
                raise HandlerFailed("no CPU pool is running", type_name="reactor.PoolMissing")
            context = {"job_id": job.key, "command": handler.name, "attempt": job.attempt}
            return await self.pool.run(handler.fn, kwargs, timeout_s=timeout_s, log_context=context)
        try:
            with anyio.fail_after(timeout_s):
                if handler.runs is Runs.LOOP:
                    return await handler.fn(**kwargs)
                call = functools.partial(handler.fn, **kwargs)
                return await anyio.to_thread.run_sync(call, abandon_on_cancel=True)
        except TimeoutError:
            raise JobTimeout(timeout_s) from None

    async def _heartbeat(self, job: Job, lost: anyio.Event, scope: anyio.CancelScope) -> None:
        while True:
            await anyio.sleep(self.heartbeat_s)
            try:
                await self.store.renew(job)
            except LeaseLost:
                log.warning("lease_lost")
                self.observer.lease_lost()
                lost.set()
                scope.cancel()
                return
            except Exception as exc:  # MongoDB hiccup: try again next beat
                log.warning("heartbeat_failed", error=str(exc))

    async def _record(self, job: Job, handler: Handler | None, outcome: Outcome) -> None:
        if outcome.retry:
            await self._requeue(job)
            return
        result = Result(
            job_key=job.key,
            command=job.command_name,
            status=outcome.status,
            attempt=job.attempt,
            worker=self.store.owner,
            started_at=job.started_at,
            finished_at=utcnow(),
            value=outcome.value,
            error=outcome.error,
            handler=handler.source if handler else None,
            handler_version=handler.version if handler else None,
            extra={} if job.has_job_id else {"job_doc_id": job.doc_id},
        )
        try:
            await self.store.finish(job, result)
        except LeaseLost as exc:
            log.warning("lease_lost", error=str(exc))
            self.observer.lease_lost()
            return
        self.observer.job_finished(job.command_name, outcome.status, result.duration_ms / 1000)
        fields: dict[str, Any] = {"status": outcome.status.value, "duration_ms": result.duration_ms}
        if outcome.error is not None:
            fields |= {"error_type": outcome.error.type, "error": outcome.error.message}
        log.info("job_finished", **fields)

    async def _requeue(self, job: Job) -> None:
        try:
            await self.store.requeue(job)
        except LeaseLost as exc:
            log.warning("lease_lost", error=str(exc))
            return
        self.observer.job_retried(job.command_name)
        log.info("job_retry_queued")

    def _max_attempts(self, handler: Handler | None) -> int:
        if handler is not None and handler.options.max_attempts is not None:
            return handler.options.max_attempts
        return self.max_attempts


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
