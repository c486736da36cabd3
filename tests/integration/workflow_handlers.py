"""Handlers the workflow tests register (top-level, so the CPU pool can import them)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from jobs_lib import Gate

from reactor.errors import InputError
from reactor.handler import JobContext, handler
from reactor.registry import Registry, build_handler

RUNS: Counter[str] = Counter()  # executions per job_id, across every reactor in this process
HELD = {"gate": Gate()}  # wf_hold waits here until a test opens it


async def wf_items(n: int) -> dict[str, Any]:
    """``items``: 0 .. n-1, each as ``{"x": i}``."""
    return {"items": [{"x": i} for i in range(n)], "count": n}


async def wf_square(ctx: JobContext, x: int) -> int:
    RUNS[ctx.job_id] += 1
    return x * x


async def wf_squares(ctx: JobContext, xs: list[int]) -> list[int]:
    """A batched handler: one result per element, in order."""
    RUNS[ctx.job_id] += 1
    return [x * x for x in xs]


async def wf_total(ctx: JobContext, values: list[int]) -> dict[str, Any]:
    RUNS[ctx.job_id] += 1
    return {"values": values, "total": sum(values)}


async def wf_count(ctx: JobContext, **args: Any) -> dict[str, Any]:
    """Count the execution and return the args."""
    RUNS[ctx.job_id] += 1
    return {"args": args}


@handler(runs="thread")
def wf_needs(ctx: JobContext, fix: Path) -> str:
    """Fail (not retried) until the file ``fix`` exists in the workflow's directory."""
    RUNS[ctx.job_id] += 1
    if not fix.exists():
        raise InputError(f"{fix.name} is missing")
    return fix.read_text()


async def wf_hold(ctx: JobContext) -> str:
    """Wait until the test opens the gate (or the job is cancelled)."""
    RUNS[ctx.job_id] += 1
    await HELD["gate"].wait()
    return "released"


@handler(runs="thread")
def wf_write(ctx: JobContext, name: str, text: str) -> dict[str, str]:
    """Write ``text`` to ``name`` in the job's own directory; hand its path on."""
    target = ctx.path(name)
    target.write_text(text)
    return {"path": ctx.reference(target)}


@handler(runs="process", timeout_s=30)
def wf_read(path: Path) -> dict[str, str]:
    """Read a file (a path argument: relative to the workflow's directory)."""
    return {"text": path.read_text()}


def registry() -> Registry:
    funcs = {name: fn for name, fn in globals().items() if name.startswith("wf_")}
    return Registry(build_handler(name, fn) for name, fn in funcs.items())
