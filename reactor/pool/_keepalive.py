"""``KeepAlive`` binds a CPU task's execution to its job's lease (exported by ``reactor.pool``).

The worker's watchdog process enforces the deadline (``reactor.pool._watchdog``); the pool
enforces it too, ``KEEPALIVE_GRACE_S`` later, through :class:`LeaseWatch`, in case the
watchdog cannot.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from reactor.pool._handle import WorkerProcess

KEEPALIVE_GRACE_S: Final = 1.0  # the pool stops a task this long after its watchdog should have


class KeepAlive:
    """A deadline on ``time.monotonic()`` that only moves forward; the task stops when it passes.

    ``CLOCK_MONOTONIC`` is one clock for every process of the machine, so the worker compares
    the same deadline against the same clock. Each :meth:`extend` is forwarded to the worker
    running the task. Once the deadline has passed the keep-alive stays expired: the execution
    is being stopped, and a late extension cannot call it back. Use it on the pool's event loop.
    """

    def __init__(self, deadline: float) -> None:
        self._deadline = deadline
        self._listeners: list[Callable[[float], None]] = []

    @classmethod
    def lasting(cls, seconds: float) -> KeepAlive:
        """A keep-alive whose deadline is ``seconds`` from now."""
        return cls(time.monotonic() + seconds)

    @property
    def deadline(self) -> float:
        return self._deadline

    @property
    def expired(self) -> bool:
        return time.monotonic() >= self._deadline

    def extend(self, until: float) -> bool:
        """Move the deadline to ``until`` if that is later; ``False`` if it had already passed."""
        if self.expired:
            return False
        if until > self._deadline:
            self._deadline = until
            for listener in tuple(self._listeners):
                listener(until)
        return True

    def watch(self, listener: Callable[[float], None]) -> Callable[[], None]:
        """Call ``listener(deadline)`` on each extension until the returned function is called."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    def __repr__(self) -> str:
        left_s = self._deadline - time.monotonic()
        return f"KeepAlive(deadline={self._deadline:.3f}, {left_s:.3f} s left)"


class LeaseWatch:
    """The pool's side of one task's keep-alive: its own deadline, and forwarding extensions.

    ``scope`` ends the wait for a worker, or for its reply, ``KEEPALIVE_GRACE_S`` after the
    keep-alive's deadline; each extension moves it, and is sent on to the worker running the
    task. Without a keep-alive the scope never fires.
    """

    def __init__(self, keepalive: KeepAlive | None) -> None:
        self._keepalive = keepalive
        self._target: tuple[WorkerProcess, int] | None = None  # where to forward extensions
        self.scope = asyncio.timeout_at(self._parent_deadline())
        self._unwatch = keepalive.watch(self._extended) if keepalive is not None else None

    def __enter__(self) -> LeaseWatch:
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._unwatch is not None:
            self._unwatch()

    @property
    def deadline(self) -> float | None:
        """The worker's deadline, on ``time.monotonic()``."""
        return None if self._keepalive is None else self._keepalive.deadline

    @property
    def fired(self) -> bool:
        return self.scope.expired()

    def forward_to(self, worker: WorkerProcess, seq: int) -> None:
        self._target = (worker, seq)

    def _parent_deadline(self) -> float | None:
        if self._keepalive is None:
            return None
        loop_time = asyncio.get_running_loop().time()  # the loop's clock, not assumed monotonic()
        return loop_time + (self._keepalive.deadline - time.monotonic()) + KEEPALIVE_GRACE_S

    def _extended(self, until: float) -> None:
        if not self.scope.expired():
            self.scope.reschedule(self._parent_deadline())
        if self._target is not None:
            worker, seq = self._target
            worker.send_deadline(seq, until)
