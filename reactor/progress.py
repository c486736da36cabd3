"""Progress reports: ``ctx.progress(fraction, message)`` works wherever the handler runs.

A handler calls :meth:`reactor.JobContext.progress`, which calls :func:`report` here. What
happens next depends on the process: in the reactor, the sink installed by the reactor hands the
report to the job's throttled writer (thread-safe, so thread handlers may call it); in a CPU pool
worker, the pool installs a sink that sends the report over the worker's pipe to the parent,
which hands it to the same writer. Without a sink (a handler called directly, in a unit test)
reports are dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from contextlib import contextmanager
from typing import Any

import anyio
import structlog

Sink = Callable[[str, float, "str | None"], None]

MESSAGE_MAX_CHARS = 500

_log = structlog.get_logger("reactor.progress")

_sink: Sink | None = None


def set_sink(sink: Sink | None) -> Sink | None:
    """Install the process's sink (``None`` removes it); returns the one it replaces."""
    global _sink
    previous, _sink = _sink, sink
    return previous


def report(job_id: str, fraction: float, message: str | None = None) -> None:
    """Validate a report and pass it to the sink; ``fraction`` is clamped to ``[0, 1]``."""
    value = check_fraction(fraction)
    text = None if message is None else str(message)[:MESSAGE_MAX_CHARS]
    sink = _sink
    if sink is not None:
        sink(job_id, value, text)


def check_fraction(fraction: float) -> float:
    """``fraction`` as a float in ``[0, 1]``; ``ValueError`` for NaN or a non-number."""
    if isinstance(fraction, bool) or not isinstance(fraction, int | float):
        raise ValueError(f"progress fraction must be a number, got {type(fraction).__name__}")
    value = float(fraction)
    if math.isnan(value):
        raise ValueError("progress fraction must be a number, got NaN")
    return min(1.0, max(0.0, value))


class Router:
    """The reactor process's sink: each report goes to its job's writer, on that writer's loop.

    Thread handlers call ``ctx.progress`` from a worker thread: the report is handed to the
    loop with ``call_soon_threadsafe``. Several reactors in one process (tests) share it.
    """

    def __init__(self) -> None:
        self._routes: dict[str, tuple[asyncio.AbstractEventLoop, Callable[..., None]]] = {}

    def install(self) -> None:
        """Make this router the process's sink (idempotent)."""
        if _sink is not self.deliver:
            set_sink(self.deliver)

    @contextmanager
    def route(self, job_id: str, callback: Callable[[float, str | None], None]) -> Iterator[None]:
        """Deliver ``job_id``'s reports to ``callback`` (on this loop) while the block runs."""
        self.install()
        route = (asyncio.get_running_loop(), callback)
        self._routes[job_id] = route
        try:
            yield
        finally:
            if self._routes.get(job_id) is route:
                del self._routes[job_id]

    def deliver(self, job_id: str, fraction: float, message: str | None) -> None:
        route = self._routes.get(job_id)
        if route is None:
            return
        loop, callback = route
        if _on_loop(loop):
            callback(fraction, message)
        else:
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(callback, fraction, message)


ROUTER = Router()


def _on_loop(loop: asyncio.AbstractEventLoop) -> bool:
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return False


class Writer:
    """One job's progress, written at most once per ``interval_s`` (the latest report wins)."""

    def __init__(
        self,
        write: Callable[[float, str | None], Awaitable[None]],
        *,
        interval_s: float = 1.0,
        on_report: Callable[[float], None] | None = None,
        spawn: Callable[[Callable[[], Coroutine[Any, Any, None]]], object] | None = None,
    ) -> None:
        self._write = write
        self._spawn = spawn  # starts :meth:`run` at the first report (most jobs report nothing)
        self._interval_s = interval_s
        self._on_report = on_report
        self._latest: tuple[float, str | None] | None = None
        self._pending = anyio.Event()
        self._written_at = -math.inf

    def report(self, fraction: float, message: str | None = None) -> None:
        """Take a report (on the loop); the writer task writes it when the throttle allows."""
        self._latest = (fraction, message)
        if self._on_report is not None:
            self._on_report(fraction)
        self._pending.set()
        if self._spawn is not None:
            spawn, self._spawn = self._spawn, None
            spawn(self.run)

    async def run(self) -> None:
        """Write reports until cancelled; a failed write is dropped (the next one retries)."""
        while True:
            await self._pending.wait()
            self._pending = anyio.Event()
            await anyio.sleep(max(0.0, self._written_at + self._interval_s - time.monotonic()))
            latest, self._latest = self._latest, None
            if latest is None:
                continue
            self._written_at = time.monotonic()
            try:
                await self._write(*latest)
            except Exception as exc:  # MongoDB hiccup or lost lease: progress is best effort
                _log.warning("progress_write_failed", error=str(exc))
