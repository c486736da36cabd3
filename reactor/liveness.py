"""Liveness that measures progress, not breath; and a watchdog for when nothing else can act.

``/healthz`` answers 503 with :meth:`Liveness.problems` when restarting the process would help:

- a MongoDB call hangs past its own timeout (the driver is wedged; an outage makes calls *fail*
  in time, which is not a problem of the process);
- the event loop has been blocked for ``liveness_s`` (a loop handler that never yields);
- work is waiting -- a claim tier raised and a slot free -- but the claim loop has not completed
  a claim for ``liveness_s``;
- a handler runs past its timeout by ``liveness_s`` (its timeout did not stop it);
- the change stream loop has not completed a step for ``liveness_s`` beyond its own timeout.

The :class:`Watchdog` thread runs even when the loop is blocked: it logs ``event_loop_blocked``
with the jobs that run on the loop, and, for ``reactor run``, ends the process (exit code 70)
when the problems last another ``liveness_s``, so that a supervisor restarts it even without a
probe. A process that is alive and does nothing is the worst outcome.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import anyio

from reactor.driver import Calls
from reactor.logging import get_logger

log = get_logger("reactor.liveness")

TICK_S = 0.25  # the loop's heartbeat
BLOCKED_LOG_S = 1.0  # a loop late by this much is logged as blocked
WEDGED_EXIT_CODE = 70


@dataclass
class Running:
    """A handler running now, for the overrun check and the blocked-loop log."""

    job_id: str
    command: str
    runs: str
    started: float
    timeout_s: float


class RunningHandlers:
    """The handlers running now: the dispatcher brackets each run, liveness reads them."""

    def __init__(self) -> None:
        self._running: dict[int, Running] = {}

    @contextmanager
    def running(self, job_id: str, command: str, runs: str, timeout_s: float) -> Iterator[None]:
        """Watch one handler run for overruns (and name it when the loop is blocked)."""
        entry = Running(job_id, command, runs, time.monotonic(), timeout_s)
        self._running[id(entry)] = entry
        try:
            yield
        finally:
            del self._running[id(entry)]

    def all(self) -> list[Running]:
        return list(self._running.values())


class Liveness:
    """What ``/healthz`` and the watchdog judge: progress of the loop, the claims, the stream,
    the driver calls and the running handlers (each read through the callable given)."""

    def __init__(
        self,
        liveness_s: float,
        calls: Calls,
        handlers: RunningHandlers,
        *,
        stream_timeout_s: float,
        work_waiting: Callable[[], bool] = lambda: False,
        last_claim: Callable[[], float] = time.monotonic,
        last_stream_turn: Callable[[], float] = time.monotonic,
    ) -> None:
        self.liveness_s = liveness_s
        self.calls = calls
        self.handlers = handlers
        self.stream_timeout_s = stream_timeout_s
        self.work_waiting = work_waiting
        self.last_claim = last_claim
        self.last_stream_turn = last_stream_turn
        self.tick = time.monotonic()  # the loop's last tick

    def problems(self, now: float | None = None) -> list[str]:
        """Why the process should be restarted; empty while it makes progress."""
        now = time.monotonic() if now is None else now
        limit = self.liveness_s
        found = list(self.calls.hung(now))
        if now - self.tick > limit:
            found.append(f"the event loop has been blocked for {now - self.tick:.0f} s")
        claimed_s = now - self.last_claim()
        if self.work_waiting() and claimed_s > limit:
            found.append(f"work is waiting but no claim completed for {claimed_s:.0f} s")
        for job in self.handlers.all():
            over = now - job.started - job.timeout_s
            if over > limit:
                found.append(
                    f"job {job.job_id} runs {over:.0f} s past its {job.timeout_s:g} s timeout"
                )
        stream_idle = now - self.last_stream_turn()
        if stream_idle > limit + self.stream_timeout_s:
            found.append(f"the change stream made no step for {stream_idle:.0f} s")
        return found

    async def beat(self) -> None:
        """The loop's tick (a task): the watchdog thread reads it."""
        while True:
            self.tick = time.monotonic()
            await anyio.sleep(TICK_S)


class Watchdog(threading.Thread):
    """Watches the loop from outside it; exits the process on a lasting wedge if told to."""

    def __init__(
        self,
        liveness: Liveness,
        *,
        exit_on_wedge: bool,
        on_blocked: Callable[[], None] = lambda: None,
    ) -> None:
        super().__init__(name="reactor-watchdog", daemon=True)
        self.liveness = liveness
        self.exit_on_wedge = exit_on_wedge
        self.on_blocked = on_blocked
        self._stop = threading.Event()
        self._blocked_logged = False
        self._failing_since: float | None = None

    def stop(self) -> None:
        self._stop.set()

    def run(self) -> None:
        while not self._stop.wait(TICK_S):
            now = time.monotonic()
            self._check_loop(now)
            self._check_wedge(now)

    def _check_loop(self, now: float) -> None:
        late = now - self.liveness.tick
        if late < BLOCKED_LOG_S:
            self._blocked_logged = False
            return
        if self._blocked_logged:
            return
        self._blocked_logged = True
        self.on_blocked()
        jobs = [
            {"job_id": job.job_id, "command": job.command}
            for job in self.liveness.handlers.all()
            if job.runs == "loop"
        ]
        log.error(
            "event_loop_blocked",
            blocked_s=round(late, 1),
            jobs=jobs,
            note="a loop handler must not block: use runs='thread' or 'process' for blocking work",
        )

    def _check_wedge(self, now: float) -> None:
        problems = self.liveness.problems(now)
        if not problems:
            self._failing_since = None
            return
        self._failing_since = self._failing_since or now
        if self.exit_on_wedge and now - self._failing_since > self.liveness.liveness_s:
            log.critical("reactor_wedged", reasons=problems, exit_code=WEDGED_EXIT_CODE)
            _flush()
            os._exit(WEDGED_EXIT_CODE)


def _flush() -> None:
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()


def describe(problems: list[str]) -> dict[str, Any]:
    return {"status": "wedged" if problems else "alive", "reasons": problems}
