"""Delayed jobs (``run_at``): one timer for the earliest due job, re-armed by the stream.

Nothing polls. The timer sleeps until the earliest ``run_at`` it knows of, then wakes the claim
loop. It learns of due times from change events (a job inserted or retried with ``run_at``) and,
when it has reason to think it does not know the earliest one (at startup, after a catch-up, after
firing, after a re-queue), from one query after the next claim round that comes up empty.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import UTC, datetime

import anyio
from pymongo.errors import PyMongoError

from reactor.logging import get_logger
from reactor.store import Store

log = get_logger("reactor.delays")


class DueTimer:
    def __init__(
        self, wake: Callable[[], None], now: Callable[[], datetime] = lambda: datetime.now(UTC)
    ) -> None:
        self._wake = wake
        self._now = now  # the server's time: run_at is judged by it
        self._due: datetime | None = None
        self._changed = anyio.Event()
        self.lookup_needed = True

    @property
    def due(self) -> datetime | None:
        return self._due

    def offer(self, when: datetime) -> None:
        """A job becomes due at ``when``: fire then, unless something is due earlier."""
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)  # BSON dates are UTC
        if self._due is None or when < self._due:
            self._due = when
            self._changed.set()

    def forget(self) -> None:
        """The earliest due job may be unknown now: look it up after the next empty round."""
        self.lookup_needed = True

    async def refresh(self, store: Store) -> None:
        """Look up the earliest due job, if needed (after a claim round found nothing)."""
        if not self.lookup_needed:
            return
        self.lookup_needed = False
        try:
            when = await store.earliest_due()
        except PyMongoError as exc:
            self.lookup_needed = True
            log.warning("due_lookup_failed", error=str(exc))
            return
        if when is not None:
            self.offer(when)

    async def run(self) -> None:
        """Sleep until the earliest due time, wake the claim loop, repeat."""
        while True:
            with anyio.move_on_after(self._seconds_left()):
                await self._changed.wait()
            self._changed = anyio.Event()
            if self._due is not None and self._seconds_left() <= 0:
                self._due = None
                self.lookup_needed = True
                self._wake()

    def _seconds_left(self) -> float:
        if self._due is None:
            return math.inf
        return max(0.0, (self._due - self._now()).total_seconds())
