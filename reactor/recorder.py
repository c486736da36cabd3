"""Recording an outcome: a finished outcome is precious, so it survives MongoDB outages.

When a write fails because MongoDB is unreachable (or failing over, or timing out), the outcome
is kept and the fenced writes are tried again with back-off, while the heartbeat keeps the lease
(it renews as soon as MongoDB answers). The handler runs again only if the lease was really lost:
the fence check then says so and the outcome is dropped. A definite refusal never loops: a value
BSON cannot hold becomes a ``ResultNotStorable`` failure; a result document MongoDB refuses ends
the job ``failed`` with the refusal on the job document itself.
"""

from __future__ import annotations

import itertools
from datetime import timedelta
from typing import Any, Protocol

import anyio
from bson.errors import BSONError
from pymongo.errors import PyMongoError

from reactor.driver import is_transient
from reactor.errors import (
    CancelPending,
    JobRequeued,
    LeaseLost,
    ResultNotStorable,
    ResultRefused,
)
from reactor.finisher import Finisher
from reactor.lease import Lease
from reactor.logging import get_logger
from reactor.model import CancelRequest, Job, Result, Status
from reactor.outcome import Kind, Outcome, Record, cancelled, failed, refused
from reactor.registry import Handler
from reactor.store import Store
from reactor.usage import Usage

log = get_logger("reactor.recorder")

BACKOFF_S = (0.2, 0.5, 1.0, 2.0)  # between attempts to record; the last one repeats


class Observer(Protocol):
    """Receives outcomes (the metrics)."""

    def job_started(self, command: str) -> None: ...
    def job_finished(self, command: str, status: Status, duration_s: float) -> None: ...
    def job_cost(self, command: str, usage: Usage) -> None: ...
    def job_retried(self, command: str) -> None: ...
    def lease_lost(self) -> None: ...
    def recording(self, delta: int) -> None: ...
    def record_retried(self) -> None: ...
    def job_progress(self, job_id: str, command: str, fraction: float) -> None: ...
    def job_left(self, job_id: str, command: str) -> None: ...


class Recorder:
    def __init__(self, store: Store, observer: Observer, finisher: Finisher) -> None:
        self.store = store
        self.observer = observer
        self.finisher = finisher  # final outcomes go through it, in batches

    async def record(
        self, job: Job, handler: Handler | None, outcome: Outcome, lease: Lease
    ) -> None:
        """Write ``outcome`` until it is stored or the lease is known lost."""
        if outcome.kind is Kind.LOST:
            return
        self.observer.recording(+1)
        try:
            await self._record(job, handler, outcome, lease)
        finally:
            self.observer.recording(-1)

    async def _record(
        self, job: Job, handler: Handler | None, outcome: Outcome, lease: Lease
    ) -> None:
        for attempt in itertools.count():
            try:
                await self._write(job, handler, outcome, fresh=lease.fresh)
                self._report(job, outcome)
                return
            except JobRequeued:
                await self._release(job)
                return
            except LeaseLost as exc:
                log.warning("lease_lost", error=str(exc))
                self.observer.lease_lost()
                return
            except ResultNotStorable as exc:
                outcome = failed(exc)
            except CancelPending as exc:
                outcome = cancelled(CancelRequest(exc.via, exc.requested_at))
            except (ResultRefused, BSONError) as exc:  # BSONError: DocumentTooLarge, say
                outcome = self._refused(outcome, exc)
            except PyMongoError as exc:
                if not is_transient(exc):
                    outcome = self._refused(outcome, exc)
                    continue
                self.observer.record_retried()
                pause_s = BACKOFF_S[min(attempt, len(BACKOFF_S) - 1)]
                log.warning("outcome_not_recorded", error=str(exc), retry_in_s=pause_s,
                            outcome=outcome.kind.value)  # fmt: skip
                await anyio.sleep(pause_s)
                if lease.lost.is_set():
                    return

    async def _write(
        self, job: Job, handler: Handler | None, outcome: Outcome, *, fresh: bool
    ) -> None:
        now = self.store.now()
        run_at = now + timedelta(seconds=outcome.delay_s) if outcome.delay_s > 0 else None
        if outcome.kind is Kind.RELEASE:
            await self._release(job)
        elif outcome.kind is Kind.RETRY:
            summary = outcome.error.summary(job.attempt, now) if outcome.error else None
            await self.store.requeue(job, run_at=run_at, error=summary)
        elif outcome.kind is Kind.HAND_BACK:
            await self.store.hand_back(job, run_at=run_at)
        elif outcome.record is Record.JOB_ONLY:
            assert outcome.error is not None
            await self.store.fail_without_result(job, outcome.error.to_doc())
        else:
            await self.finisher.finish(self._result(job, handler, outcome), renew=not fresh)

    def _refused(self, outcome: Outcome, exc: BaseException) -> Outcome:
        after = refused(outcome, exc)
        where = "job_only" if after.record is Record.JOB_ONLY else "minimal_result"
        log.error("result_refused", error=str(exc), recorded_as=where)
        return after

    async def _release(self, job: Job) -> None:
        """A client re-queued the running job: give the lease up so that it runs again."""
        released = await self.store.release(job)
        log.info("job_lease_released", requeued_by_client=True, released=released)

    def _result(self, job: Job, handler: Handler | None, outcome: Outcome) -> Result:
        assert outcome.status is not None
        now = self.store.now()
        errors = list(job.errors)
        if outcome.error is not None:
            errors.append(outcome.error.summary(job.attempt, now))
        return Result(
            job=job,
            status=outcome.status,
            worker=self.store.worker,
            finished_at=now,
            value=outcome.value,
            error=outcome.error,
            handler=handler.source if handler else None,
            handler_version=handler.version if handler else None,
            errors=tuple(errors),
            cancel=outcome.cancel,
            started=outcome.started,
            extra=outcome.usage.to_doc() if outcome.usage is not None else {},
        )

    def _report(self, job: Job, outcome: Outcome) -> None:
        if outcome.kind is Kind.RELEASE:
            return  # logged as job_lease_released
        if outcome.kind is Kind.RETRY:
            self.observer.job_retried(job.command_name)
            error = outcome.error
            log.info("job_retry_queued", delay_s=round(outcome.delay_s, 3),
                     error_type=error.type if error else None,
                     error=error.message[:300] if error else None)  # fmt: skip
            return
        if outcome.kind is Kind.HAND_BACK:
            log.warning("job_handed_back")
            return
        assert outcome.status is not None
        duration_s = (self.store.now() - job.started_at).total_seconds()
        self.observer.job_finished(job.command_name, outcome.status, duration_s)
        if outcome.usage is not None:
            self.observer.job_cost(job.command_name, outcome.usage)
        fields: dict[str, Any] = {
            "status": outcome.status.value,
            "duration_ms": round(duration_s * 1000, 3),
        }
        if outcome.error is not None:
            fields |= {"error_type": outcome.error.type, "error": outcome.error.message[:300]}
            log.warning("job_finished", **fields)
        elif outcome.cancel is not None:
            log.info("job_finished", cancelled_via=outcome.cancel.via, **fields)
        else:
            log.info("job_finished", **fields)
