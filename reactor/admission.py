"""Admission: every limit on what this reactor runs, and the only count of what it runs.

One object owns each limit:

- ``max_jobs``, all jobs together: the claim loop :meth:`~Admission.reserve` s a slot *before* it
  claims, so with every slot held it claims nothing (backpressure before claiming, never a buffer);
- ``cpu_workers``, for the commands that run in the CPU pool, and each handler's own
  ``max_concurrency``: a command at its limit is left out of the claim query
  (:meth:`~Admission.restriction`), so other work still flows;
- run-alone isolation (:meth:`~Admission.run_slot`), below;
- the claims made only to record a cancellation (:attr:`~Admission.cancel_slots`).

What a slot covers is held by a :class:`Slot` from the claim to the recorded outcome, released on
exit whatever happens. In-flight counts and "idle" come from here alone (metrics and the drain).

**Reclaimed jobs run alone**, so a reactor death is charged to the job that caused it. A reactor
can only be killed from inside by code in its own process: loop and thread handlers (``os._exit``,
a segfault in a native call, memory). When a reactor dies, every job it held is reclaimed by
others, and nobody knows which one killed it. So a reclaimed loop or thread job runs *alone* among
loop and thread jobs on its new reactor (CPU pool jobs go on: their crashes are charged to them
precisely). If that reactor dies too, the job is known poison and the next claim fails it with
``PoisonJob`` without running it. An outage explains an expired lease without any death
(:meth:`reactor.connectivity.Connectivity.explains`): such a reclaim runs shared as usual.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator, Callable, Collection, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import anyio

from reactor.queries import Restriction

CANCEL_CLAIMS = 16  # claims that only record a cancellation, at once


@dataclass(frozen=True)
class Limits:
    """The limits, resolved from the settings and the registry."""

    max_jobs: int
    cpu_slots: int
    cpu_commands: frozenset[str]
    per_command: Mapping[str, int]  # handler name -> its max_concurrency
    cancel_claims: int = CANCEL_CLAIMS


class Admission:
    """Holds every limit; hands out a :class:`Slot` per job."""

    def __init__(self, limits: Limits) -> None:
        self._limits = limits
        self._jobs = anyio.CapacityLimiter(limits.max_jobs)
        self._running: Counter[str] = Counter()  # commands holding a slot
        self._cpu_held = 0
        self._released = anyio.Event()
        self._cancels = anyio.Semaphore(limits.cancel_claims)
        self._isolation = _Isolation()

    @property
    def in_flight(self) -> int:
        """Jobs holding a slot now."""
        return int(self._jobs.borrowed_tokens)

    @property
    def has_room(self) -> bool:
        return self._jobs.available_tokens > 0

    async def reserve(self) -> Slot:
        """A job slot, once one is free (backpressure: call before claiming)."""
        slot = Slot(self)
        await self._jobs.acquire_on_behalf_of(slot)
        return slot

    def reserve_now(self, most: int) -> list[Slot]:
        """Up to ``most`` more job slots, those free right now (for a batch claim)."""
        slots: list[Slot] = []
        while len(slots) < most and self.has_room:
            slot = Slot(self)
            self._jobs.acquire_on_behalf_of_nowait(slot)
            slots.append(slot)
        return slots

    def choose(self, commands: Sequence[Any], slots: int) -> list[int]:
        """Which of these claim candidates (their commands, in claim order) fit in ``slots``
        held slots and every command's limit: their indexes."""
        running = Counter(self._running)
        cpu_held = self._cpu_held
        chosen: list[int] = []
        for index, command in enumerate(commands):
            if len(chosen) == slots:
                break
            name = command if isinstance(command, str) else repr(command)
            limit = self._limits.per_command.get(name)
            in_pool = name in self._limits.cpu_commands
            if (limit is not None and running[name] >= limit) or (
                in_pool and cpu_held >= self._limits.cpu_slots
            ):
                continue
            running[name] += 1
            cpu_held += in_pool
            chosen.append(index)
        return chosen

    def restriction(self) -> Restriction:
        """The commands a claim must leave out now (at their limit, or while one runs alone)."""
        full = [name for name, limit in self._limits.per_command.items()
                if self._running[name] >= limit]  # fmt: skip
        if self._cpu_held >= self._limits.cpu_slots:
            full.extend(self._limits.cpu_commands)
        only = tuple(sorted(self._limits.cpu_commands)) if self._isolation.active else None
        return Restriction(tuple(sorted(set(full))), only)

    async def until_idle(self) -> None:
        """Return once no job holds a slot."""
        while self.in_flight:
            await self._released.wait()

    def run_slot(self, *, in_process: bool, alone: bool) -> AbstractAsyncContextManager[None]:
        """Admission of one handler run: shared, or alone among in-process handlers."""
        return self._isolation.slot(in_process=in_process, alone=alone)

    @property
    def cancel_slots(self) -> anyio.Semaphore:
        """The claims made only to record a cancellation (``cancel_relay.py``)."""
        return self._cancels

    def _take(self, command: str) -> None:
        self._running[command] += 1
        if command in self._limits.cpu_commands:
            self._cpu_held += 1

    def _give_back(self, slot: Slot, command: str | None) -> None:
        if command is not None:
            self._running[command] -= 1
            if command in self._limits.cpu_commands:
                self._cpu_held -= 1
        self._jobs.release_on_behalf_of(slot)
        self._released.set()
        self._released = anyio.Event()


class Slot:
    """One job's hold on admission, from before its claim until its outcome is recorded.

    ``with slot:`` releases it on exit; :meth:`release` gives back a slot that claimed nothing.
    """

    def __init__(self, admission: Admission) -> None:
        self._admission = admission
        self._command: str | None = None
        self._released = False

    def take(self, command: str) -> Slot:
        """Count the claimed job's command against its limits."""
        self._command = command
        self._admission._take(command)
        return self

    def release(self) -> None:
        if not self._released:
            self._released = True
            self._admission._give_back(self, self._command)

    def __enter__(self) -> Slot:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()


class _Isolation:
    """Admission of in-process (loop and thread) handler runs: shared, or one exclusive."""

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
        if not in_process:
            yield
        elif alone:
            async with self._alone():
                yield
        else:
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
            await self._changed.wait()

    def _notify(self) -> None:
        self._changed.set()
        self._changed = anyio.Event()


def limits_of(
    *,
    max_jobs: int,
    cpu_slots: int,
    handlers: Collection[tuple[str, bool, int | None]],
) -> Limits:
    """Limits from the settings and ``(name, runs_in_pool, max_concurrency)`` per handler."""
    return Limits(
        max_jobs=max_jobs,
        cpu_slots=cpu_slots,
        cpu_commands=frozenset(name for name, in_pool, _ in handlers if in_pool),
        per_command={name: limit for name, _, limit in handlers if limit},
    )
