"""Holding a job: the heartbeat that renews its lease, and the local deadline that bounds it.

The heartbeat renews every ``heartbeat_s`` (a third of the lease) until the job is recorded,
also while a finished outcome waits for MongoDB to come back. A renewal answers with the job's
status and cancel fields, so a cancellation the stream missed is still seen here.

The lease expires on the server ``lease_s`` after the last renewal. Past ``deadline`` (a margin
before that, on this machine's monotonic clock) another reactor may have taken the job, so a
handler still running must stop: the CPU pool's keep-alive kills the worker by itself (it works
even when this process is frozen by SIGSTOP), and a loop handler is cancelled here. A finished
outcome is kept: recording it needs the fence, which tells whether the job is still ours.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import anyio
from pymongo.errors import PyMongoError

from reactor.cancel import Reason, Watch
from reactor.errors import JobRequeued, LeaseLost
from reactor.logging import get_logger
from reactor.model import cancel_request
from reactor.store import Store

log = get_logger("reactor.lease")

DEADLINE_MARGIN = 0.15  # of lease_s: stop a handler this long before the lease can expire


class Lease:
    """One held job's lease."""

    def __init__(
        self,
        store: Store,
        watch: Watch,
        *,
        lease_s: float,
        heartbeat_s: float,
        stops_handler: bool = True,
    ) -> None:
        self._store = store
        self._watch = watch
        self._lease_s = lease_s
        self._heartbeat_s = heartbeat_s
        self.lost = anyio.Event()
        self.stops_handler = stops_handler  # False for a thread handler: see _guard_deadline
        self.deadline = (watch.job.claimed_at or time.monotonic()) + self._span_s
        self._listeners: list[Callable[[float], object]] = []

    @property
    def _span_s(self) -> float:
        return self._lease_s * (1 - DEADLINE_MARGIN)

    @property
    def fresh(self) -> bool:
        """More than half of the lease is left: writes need no renewal first."""
        return self.deadline - time.monotonic() > self._span_s / 2

    def on_extend(self, listener: Callable[[float], object]) -> None:
        """Call ``listener(deadline)`` now and after every renewal (the pool's keep-alive)."""
        self._listeners.append(listener)
        listener(self.deadline)

    async def keep(self) -> None:
        """Renew until cancelled or lost; stop the handler when the deadline passes unrenewed."""
        async with anyio.create_task_group() as tg:
            tg.start_soon(self._guard_deadline)
            await self._beat()
            tg.cancel_scope.cancel()

    async def _beat(self) -> None:
        job = self._watch.job
        while True:
            await anyio.sleep(self._heartbeat_s)
            sent = time.monotonic()
            requeued = self._watch.reason is Reason.REQUEUED
            try:
                found = await self._store.renew(job, requeued=requeued)
            except JobRequeued:
                self._watch.stop(Reason.REQUEUED)
                if self._watch.stoppable:
                    return
                continue  # a thread runs on: keep the lease (requeued) until it returns
            except LeaseLost:
                log.warning("lease_lost")
                self.lost.set()
                self._watch.stop(Reason.LOST)
                return
            except PyMongoError as exc:  # MongoDB away: keep trying; the deadline guards
                log.warning("heartbeat_failed", error=str(exc), error_type=type(exc).__name__)
                continue
            self._extend(sent + self._span_s)
            request = cancel_request(found)
            if request is not None:
                self._watch.stop(Reason.CANCEL, request)

    def _extend(self, deadline: float) -> None:
        if deadline <= self.deadline:
            return
        self.deadline = deadline
        for listener in self._listeners:
            listener(deadline)

    async def _guard_deadline(self) -> None:
        """Stop the handler when the deadline passes unrenewed, unless it is a thread handler:
        a thread cannot be stopped, so handing its job back would only start a second execution
        beside it. It runs on, and the heartbeat renews as soon as MongoDB answers (other
        reactors hold back reclaims for a lease's length after an outage)."""
        while (remaining := self.deadline - time.monotonic()) > 0:  # noqa: ASYNC110 (moving deadline)
            await anyio.sleep(remaining)
        log.warning("lease_deadline_passed", lease_s=self._lease_s, stopped=self.stops_handler)
        if self.stops_handler:
            self._watch.stop(Reason.EXPIRED)
