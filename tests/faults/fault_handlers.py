"""Handlers of the fault suite and the soak, loaded with ``REACTOR_HANDLER_MODULES=<this file>``.

Every public function here becomes a command of its own name: plain functions run in the CPU
pool, ``async def`` on the event loop, ``@handler(runs="thread")`` in a thread. Each records its
execution (start, a tick every 0.1 s, end) under ``$FAULT_RECORDS`` (see ``fault_records.py``)
and returns ``{job_id, attempt, pid, token}``, the token naming the execution's record file.
"""

from __future__ import annotations

import subprocess
import time
from typing import Any

import anyio

from reactor.handler import JobContext, handler
from tests.faults.fault_records import TICK_S, Recorder, now


async def loop_job(
    ctx: JobContext, seconds: float = 0.0, until: float | None = None
) -> dict[str, Any]:
    """Tick on the event loop for ``seconds``, or until the monotonic time ``until`` (one clock
    for every process on the machine, so jobs given one ``until`` end at one instant)."""
    record = Recorder(ctx, "loop")
    deadline = until if until is not None else record.started + seconds
    try:
        while (left := deadline - now()) > 0:
            await anyio.sleep(min(TICK_S, left))
            record.tick()
    except BaseException as exc:
        record.stop(type(exc).__name__)
        raise
    return record.end()


@handler(max_concurrency=1)
async def probe(ctx: JobContext, seconds: float = 2.0) -> dict[str, Any]:
    """A loop job each reactor runs one at a time: proof that a given reactor processes work."""
    return await loop_job(ctx, seconds)


@handler(runs="thread")
def thread_job(ctx: JobContext, seconds: float = 0.0) -> dict[str, Any]:
    """Tick in a worker thread for ``seconds``."""
    record = Recorder(ctx, "thread")
    while (left := record.started + seconds - now()) > 0:
        time.sleep(min(TICK_S, left))
        record.tick()
    return record.end()


def cpu_job(ctx: JobContext, seconds: float = 0.0) -> dict[str, Any]:
    """Tick in a CPU pool worker for ``seconds`` (sleeping, to leave the cores to the rest)."""
    record = Recorder(ctx, "process")
    while (left := record.started + seconds - now()) > 0:
        time.sleep(min(TICK_S, left))
        record.tick()
    return record.end()


def cpu_burn_job(ctx: JobContext, seconds: float = 0.0, child: bool = False) -> dict[str, Any]:
    """Burn CPU in a pool worker for ``seconds``, with a child process (like tesseract) if asked."""
    record = Recorder(ctx, "process")
    helper = subprocess.Popen(["sleep", str(int(seconds) + 60)]) if child else None
    if helper is not None:
        record.write("child", pid=helper.pid)
    try:
        while (left := record.started + seconds - now()) > 0:
            _burn(min(TICK_S, left))
            record.tick()
    finally:
        if helper is not None:
            helper.kill()
            helper.wait()
    return record.end()


def _burn(seconds: float) -> None:
    until = now() + seconds
    while now() < until:
        sum(range(1000))


@handler(timeout_s=1)
async def blocking_loop_job(ctx: JobContext, seconds: float = 0.0) -> dict[str, Any]:
    """Block the event loop for ``seconds`` (a loop handler's mistake), past its 1 s timeout."""
    record = Recorder(ctx, "loop")
    time.sleep(seconds)  # noqa: ASYNC251 (the blocking is what this job is for)
    return record.end()


def child_leaving_job(ctx: JobContext, seconds: float = 0.0) -> dict[str, Any]:
    """Start a long child process in a pool worker and return without waiting for it."""
    record = Recorder(ctx, "process")
    child = subprocess.Popen(["sleep", "313"])
    record.write("child", pid=child.pid)
    return {**record.end(), "child": child.pid}
