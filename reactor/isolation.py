"""Reclaimed jobs run alone, so a reactor death is charged to the job that caused it.

A reactor can only be killed from inside by code that runs in its own process: loop and thread
handlers (``os._exit``, a segfault in a native call, memory). When a reactor dies, every job it
held is reclaimed by others, and nobody knows which one killed it. So a reclaimed loop or
thread job runs *alone* among loop and thread jobs on its new reactor (CPU pool jobs go on:
their crashes are charged to them precisely). If that reactor dies too, the job is known poison
and the next claim fails it with ``PoisonJob`` without running it. A reclaim is never charged
as an attempt to the jobs that merely ran beside the culprit.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

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
