"""Reclaimed jobs run alone, so a reactor death is charged to the job that caused it.

A reactor can only be killed from inside by code that runs in its own process: loop and thread
handlers (``os._exit``, a segfault in a native call, memory). When a reactor dies, every job it
held is reclaimed by others, and nobody knows which one killed it. So a reclaimed loop or
thread job runs *alone* among loop and thread jobs on its new reactor (CPU pool jobs go on:
their crashes are charged to them precisely). If that reactor dies too, the job is known poison
and the next claim fails it with ``PoisonJob`` without running it. A reclaim is never charged
as an attempt to the jobs that merely ran beside the culprit.

An outage explains an expired lease without any death: owners that were cut off from MongoDB
could not renew, and a reactor stopped during the outage could not hand its jobs back. So a
reclaim whose lease ran out while this reactor itself saw MongoDB unreachable (a lease's length
either side of the outage, :class:`Outages`) runs shared as usual, and recovery after an outage
uses every slot. A job that killed its reactor during an outage is then caught one reclaim later.
"""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

import anyio


class Isolation:
    """Admission of in-process (loop and thread) handlers: shared, or one exclusive."""

    def __init__(self) -> None:
        self._shared = 0
        self._exclusive = False
        self._waiting = 0  # exclusive runs waiting for the shared ones to finish
        self._changed = anyio.Event()

    @property
    def active(self) -> bool:
        """An exclusive run is waiting or running: claim no more in-process work meanwhile."""
        return self._exclusive or self._waiting > 0

    @asynccontextmanager
    async def slot(self, *, in_process: bool, alone: bool) -> AsyncIterator[None]:
        """Hold an admission slot for one handler run (none needed for pool handlers)."""
        if not in_process:
            yield
            return
        if alone:
            async with self._alone():
                yield
            return
        await self._until(lambda: not self.active)
        self._shared += 1
        try:
            yield
        finally:
            self._shared -= 1
            self._notify()

    @asynccontextmanager
    async def _alone(self) -> AsyncIterator[None]:
        self._waiting += 1
        try:
            await self._until(lambda: self._shared == 0 and not self._exclusive)
        finally:
            self._waiting -= 1
        self._exclusive = True
        try:
            yield
        finally:
            self._exclusive = False
            self._notify()

    async def _until(self, ready: Callable[[], bool]) -> None:
        while not ready():
            changed = self._changed
            await changed.wait()

    def _notify(self) -> None:
        self._changed.set()
        self._changed = anyio.Event()


class Outages:
    """The recent periods this reactor saw MongoDB unreachable, on the wall clock (leases are
    wall-clock dates), to tell a lease that expired in an outage from one whose owner died."""

    KEPT = 8

    def __init__(self, lease_s: float) -> None:
        self._margin = timedelta(seconds=lease_s)
        self._periods: deque[tuple[datetime, datetime | None]] = deque(maxlen=self.KEPT)

    def down(self) -> None:
        """The driver's monitor lost MongoDB."""
        if not self._periods or self._periods[-1][1] is not None:
            self._periods.append((_now(), None))

    def up(self) -> None:
        """MongoDB answers again; an ``up`` with no ``down`` before it (the start) opens nothing."""
        if self._periods and self._periods[-1][1] is None:
            self._periods[-1] = (self._periods[-1][0], _now())

    def call_failed(self, lasted_s: float) -> None:
        """A driver call failed for want of MongoDB after ``lasted_s``: it was away meanwhile
        (a blackhole times calls out without the monitor noticing)."""
        end = _now()
        start = end - timedelta(seconds=max(0.0, lasted_s))
        if self._periods:
            last_start, last_end = self._periods[-1]
            if last_end is None:
                return  # inside an open period
            if start <= last_end + self._margin:
                self._periods[-1] = (min(last_start, start), max(last_end, end))
                return
        self._periods.append((start, end))

    def explain(self, expired: datetime | None) -> bool:
        """Whether a lease that ran out at ``expired`` did so during (or a lease's length around)
        an outage this reactor saw."""
        if expired is None:
            return False
        for start, end in self._periods:
            if start - self._margin <= expired <= (end or _now()) + self._margin:
                return True
        return False


def _now() -> datetime:
    return datetime.now(UTC)
