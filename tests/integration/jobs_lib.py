"""Handlers the integration tests register, and the per-test :class:`Tally` some of them note into.

Handlers that count runs, starts or start order, or wait at a gate, are closures over one test's
tally (built by :func:`registry`), so a test asserts on its own counts and nothing carries over to
the next test or to the next backend's run of the same test. The rest are top-level functions;
process handlers must be, so that the CPU pool's workers can import them by name (they share no
memory with the test, so none of them counts).
"""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
from reactor_handlers.basic import echo, sleep

from reactor.errors import Retry
from reactor.handler import JobContext, handler
from reactor.registry import Registry, build_handler


class Gate:
    """Holds handlers until the test opens it; counts how many are waiting."""

    def __init__(self) -> None:
        self.open = anyio.Event()
        self.waiting = 0
        self.changed = anyio.Event()

    async def wait(self) -> None:
        self.waiting += 1
        self.changed.set()
        try:
            await self.open.wait()
        finally:
            self.waiting -= 1

    async def until_waiting(self, n: int) -> None:
        while self.waiting < n:
            self.changed = anyio.Event()
            await self.changed.wait()


@dataclass
class Tally:
    """What one test's handlers did, across all of its reactors (a fixture, fresh per test)."""

    runs: Counter[str] = field(default_factory=Counter)  # job_id -> how often it ran
    starts: dict[str, list[float]] = field(default_factory=dict)  # job_id -> monotonic starts
    order: list[str] = field(default_factory=list)  # job_ids in the order they started
    gate: Gate = field(default_factory=Gate)  # where gated handlers wait


async def explode(message: str = "boom") -> None:
    """Raise an exception of the handler's own."""
    raise RuntimeError(message)


async def not_bson() -> Any:
    """Return something BSON cannot hold."""
    return {"numbers": {1, 2, 3}}


async def big(size: int) -> str:
    """Return a string of ``size`` bytes."""
    return "x" * size


async def retry_once(ctx: JobContext) -> dict[str, int]:
    """Ask for another attempt the first time."""
    if ctx.attempt == 1:
        raise Retry("first attempt asks for a retry")
    return {"attempt": ctx.attempt}


def read_text(path: Path) -> str:
    """Read a file inside the job directory (runs in a thread)."""
    return path.read_text()


@handler(runs="process", timeout_s=20)
def cpu_square(n: int) -> dict[str, int]:
    """CPU work in the pool; reports the worker pid."""
    return {"square": n * n, "pid": os.getpid()}


@handler(runs="process", timeout_s=1)
def cpu_hang() -> None:
    """Never return, like a wedged native call."""
    while True:
        time.sleep(60)


@handler(runs="process", timeout_s=20)
def cpu_exit(code: int = 1) -> None:
    """Kill the worker process under the job."""
    os._exit(code)


@handler(runs="process", timeout_s=60)
def cpu_nap(seconds: float) -> dict[str, int]:
    """Hold a CPU worker for a while; its pid goes to ``pid`` in the working directory."""
    with open("pid", "w") as out:  # relative: the job directory is the working directory
        out.write(str(os.getpid()))
    time.sleep(seconds)
    return {"pid": os.getpid()}


@handler(runs="thread", timeout_s=60)
def thread_nap(seconds: float) -> dict[str, float]:
    """Block a thread for a while (cannot be killed, only abandoned)."""
    time.sleep(seconds)
    return {"slept_s": seconds}


async def loop_nap(seconds: float) -> dict[str, float]:
    """Wait on the loop for a while."""
    await anyio.sleep(seconds)
    return {"slept_s": seconds}


@handler(runs="process", timeout_s=60)
def cpu_steps(ctx: JobContext, steps: int, step_s: float) -> dict[str, int]:
    """Report progress after each of ``steps`` steps of ``step_s`` seconds."""
    for done in range(1, steps + 1):
        time.sleep(step_s)
        ctx.progress(done / steps, f"step {done} of {steps}")
    return {"steps": steps}


async def explode_big(size: int) -> None:
    """Raise an exception whose message is ``size`` characters long."""
    raise RuntimeError("m" * size)


async def deep(levels: int) -> Any:
    """Return a value nested ``levels`` deep."""
    value: Any = "leaf"
    for _ in range(levels):
        value = {"a": value}
    return value


def _counting(tally: Tally) -> dict[str, Callable[..., Any]]:
    """Handlers that note their runs, starts or start order into ``tally``."""

    async def record(ctx: JobContext, **args: Any) -> dict[str, Any]:
        """Count the run and return the job's identity."""
        tally.runs[ctx.job_id] += 1
        return {"job_id": ctx.job_id, "attempt": ctx.attempt}

    async def retry_later(ctx: JobContext, delay_s: float) -> dict[str, int]:
        """Ask for another attempt after ``delay_s`` the first time; note each start."""
        tally.starts.setdefault(ctx.job_id, []).append(time.monotonic())
        if ctx.attempt == 1:
            raise Retry("not yet", delay_s=delay_s)
        return {"attempt": ctx.attempt}

    async def ordered(ctx: JobContext) -> None:
        """Note the start order."""
        tally.order.append(ctx.job_id)

    async def block_loop(ctx: JobContext, seconds: float) -> dict[str, int]:
        """Block the event loop (what a loop handler must never do)."""
        tally.runs[ctx.job_id] += 1
        time.sleep(seconds)  # noqa: ASYNC251 (the point of this handler)
        return {"attempt": ctx.attempt}

    return {
        "record": record,
        "retry_later": retry_later,
        "ordered": ordered,
        "block_loop": block_loop,
    }


def _gated(tally: Tally) -> dict[str, Callable[..., Any]]:
    """Handlers that wait at ``tally.gate`` until the test opens it."""

    async def gated(ctx: JobContext) -> str:
        """Count the run and wait at the gate."""
        tally.runs[ctx.job_id] += 1
        await tally.gate.wait()
        return "released"

    @handler(max_concurrency=1)
    async def solo(ctx: JobContext) -> str:
        """Like gated, but at most one at a time per reactor."""
        await tally.gate.wait()
        return "released"

    async def big_after_gate(ctx: JobContext, size: int) -> str:
        """Wait at the gate on the first attempt, then return ``size`` bytes."""
        tally.runs[ctx.job_id] += 1
        if ctx.attempt == 1:
            await tally.gate.wait()
        return "x" * size

    return {"gated": gated, "solo": solo, "big_after_gate": big_after_gate}


STATELESS: Mapping[str, Callable[..., Any]] = {  # handlers that note nothing
    "echo": echo,
    "sleep": sleep,
    "explode": explode,
    "not_bson": not_bson,
    "big": big,
    "retry_once": retry_once,
    "read_text": read_text,
    "cpu_square": cpu_square,
    "cpu_hang": cpu_hang,
    "cpu_exit": cpu_exit,
    "cpu_nap": cpu_nap,
    "thread_nap": thread_nap,
    "loop_nap": loop_nap,
    "cpu_steps": cpu_steps,
    "explode_big": explode_big,
    "deep": deep,
}


def registry(tally: Tally) -> Registry:
    """The handlers of the integration suite, by command name; the counting and gated ones
    note into ``tally`` (every reactor of one test serves a registry over that test's tally)."""
    funcs = {**STATELESS, **_counting(tally), **_gated(tally)}
    return Registry(build_handler(name, fn) for name, fn in funcs.items())
