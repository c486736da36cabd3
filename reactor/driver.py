"""How the reactor calls MongoDB: bounded by the driver's own timeout, never cancelled halfway.

Every driver call the reactor makes runs inside :meth:`Calls.guard`:

- ``pymongo.timeout(t)`` bounds it (server selection, connection checkout, the round trip), so
  a call always ends, with a ``PyMongoError`` when MongoDB does not answer in time;
- a shielded cancel scope keeps the caller's cancellation out of it. A cancellation arriving
  meanwhile takes effect when the call returns, at most ``t`` later. Cancelling through a driver
  call is what wedged the service on Python 3.11 (anyio re-delivers cancellation on every loop
  iteration, and 3.11's ``asyncio.wait_for`` then leaves PyMongo's topology lock in the wrong
  state); "cancel around them, not through them";
- it is registered while it runs, so the liveness check can tell a call that hangs past its
  timeout (a wedged driver) from one that is merely slow.

On Python 3.11, :func:`install_lock_fix` also gives PyMongo's lock a 3.12-style wait, for driver
calls the reactor does not make itself (a handler's own client, cancelled by a timeout).
"""

from __future__ import annotations

import asyncio
import itertools
import sys
import time
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any, TypeVar

import anyio
import pymongo
from pymongo.errors import (
    ConnectionFailure,
    DocumentTooLarge,
    DuplicateKeyError,
    OperationFailure,
    PyMongoError,
    WriteError,
)

T = TypeVar("T")

HANG_GRACE_S = 5.0  # past its timeout, a call that has not returned is hung
SHUTDOWN_TIMEOUT_S = 1.0  # the bound of each call once the process is on its way out

# Server error codes after which the same write may succeed later (MongoDB's retryable set plus
# interruption and timeouts), whatever labels the server sent.
TRANSIENT_CODES = frozenset(
    {6, 7, 50, 89, 91, 189, 262, 9001, 10107, 11600, 11602, 13435, 13436, 63, 150, 133, 134, 10058}
)


class Calls:
    """The driver calls in flight, for the liveness check; failures for want of MongoDB go to
    ``on_failure(lasted_s)`` (:meth:`reactor.connectivity.Connectivity.call_failed`)."""

    def __init__(self, on_failure: Callable[[float], object] = lambda lasted_s: None) -> None:
        self._running: dict[int, tuple[str, float, float]] = {}  # id -> (name, start, timeout)
        self._ids = itertools.count()
        self._on_failure = on_failure
        self.shutting_down = False  # the final phase: calls get SHUTDOWN_TIMEOUT_S at most

    def guard(self, name: str, timeout_s: float) -> _Guard:
        """``with calls.guard("renew", 5): await ...``: bounded, shielded and watched."""
        return _Guard(self, name, timeout_s)

    async def run(self, name: str, timeout_s: float, call: Awaitable[T]) -> T:
        """Await ``call`` inside :meth:`guard`, then take a cancellation that came meanwhile.

        (A shielded await is no checkpoint: without the one here, a loop of guarded calls
        could never be cancelled.)
        """
        if self.shutting_down:
            timeout_s = min(timeout_s, SHUTDOWN_TIMEOUT_S)
        started = time.monotonic()
        try:
            with self.guard(name, timeout_s):
                result = await call
        except PyMongoError as exc:
            if is_transient(exc):
                self._on_failure(time.monotonic() - started)
            raise
        await anyio.lowlevel.checkpoint_if_cancelled()
        return result

    def hung(self, now: float | None = None) -> list[str]:
        """Calls still running past their timeout plus a grace: the driver is wedged."""
        now = time.monotonic() if now is None else now
        return [
            f"{name} has not returned after {now - start:.0f} s (timeout {timeout:g} s)"
            for name, start, timeout in list(self._running.values())
            if now - start > timeout + HANG_GRACE_S
        ]


class _Guard:
    def __init__(self, calls: Calls, name: str, timeout_s: float) -> None:
        self._calls, self._name, self._timeout_s = calls, name, timeout_s
        self._id = next(calls._ids)
        self._scope = anyio.CancelScope(shield=True)
        self._timeout: Any = None

    def __enter__(self) -> _Guard:
        self._calls._running[self._id] = (self._name, time.monotonic(), self._timeout_s)
        self._scope.__enter__()
        self._timeout = pymongo.timeout(self._timeout_s)
        self._timeout.__enter__()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        try:
            self._timeout.__exit__(exc_type, exc, tb)
        finally:
            self._calls._running.pop(self._id, None)
            self._scope.__exit__(exc_type, exc, tb)
        return None


def is_transient(exc: BaseException) -> bool:
    """Could the same operation succeed if tried again later (MongoDB unreachable, failing over,
    timing out)? ``False`` for a definite refusal: a duplicate key, a validation failure, a
    document too large."""
    if isinstance(exc, DuplicateKeyError | DocumentTooLarge):
        return False
    if isinstance(exc, ConnectionFailure):
        return True  # includes AutoReconnect, NetworkTimeout, ServerSelectionTimeoutError
    if isinstance(exc, PyMongoError) and exc.timeout:
        return True  # a client-side (CSOT) timeout
    if isinstance(exc, WriteError):
        return exc.code in TRANSIENT_CODES
    if isinstance(exc, OperationFailure):
        labels = ("RetryableWriteError", "TransientTransactionError", "ResumableChangeStreamError")
        return exc.code in TRANSIENT_CODES or any(exc.has_error_label(label) for label in labels)
    return False


def install_lock_fix() -> bool:
    """On Python < 3.12, make PyMongo's condition wait a 3.12-style timeout; True if installed.

    ``asyncio.wait_for`` on 3.11 runs the wait in an inner task; a second cancellation arriving
    while it cancels that task (anyio cancels every loop iteration until the scope exits) leaves
    the condition's lock released when PyMongo believes it holds it, or held forever. 3.12 made
    ``wait_for`` a plain ``asyncio.timeout`` block, which is what this installs.
    """
    if sys.version_info >= (3, 12):
        return False
    import pymongo.lock as pymongo_lock

    if getattr(getattr(pymongo_lock, "wait_for", None), "reactor_fix", False):
        return True

    async def wait_for(awaitable: Awaitable[T], timeout: float | None) -> T:  # noqa: ASYNC109
        async with asyncio.timeout(timeout):
            return await awaitable

    wait_for.reactor_fix = True  # type: ignore[attr-defined]
    setattr(pymongo_lock, "wait_for", wait_for)  # noqa: B010 (a module global, by name)
    return True
