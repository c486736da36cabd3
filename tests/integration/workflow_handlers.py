"""Handlers the workflow tests register; the counting and held ones note into a test's
:class:`~tests.integration.jobs_lib.Tally` (built by :func:`registry`), process handlers are
top-level functions the CPU pool can import."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from reactor.errors import InputError
from reactor.handler import JobContext, handler
from reactor.registry import Registry, build_handler
from tests.integration.jobs_lib import Tally


async def wf_items(n: int) -> dict[str, Any]:
    """``items``: 0 .. n-1, each as ``{"x": i}``."""
    return {"items": [{"x": i} for i in range(n)], "count": n}


async def wf_squares(xs: list[int]) -> list[int]:
    """A batched handler: one result per element, in order."""
    return [x * x for x in xs]


async def wf_total(values: list[int]) -> dict[str, Any]:
    return {"values": values, "total": sum(values)}


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


def _counting(tally: Tally) -> dict[str, Callable[..., Any]]:
    async def wf_square(ctx: JobContext, x: int) -> int:
        tally.runs[ctx.job_id] += 1
        return x * x

    async def wf_count(ctx: JobContext, **args: Any) -> dict[str, Any]:
        """Count the execution and return the args."""
        tally.runs[ctx.job_id] += 1
        return {"args": args}

    @handler(runs="thread")
    def wf_needs(ctx: JobContext, fix: Path) -> str:
        """Fail (not retried) until the file ``fix`` exists in the workflow's directory."""
        tally.runs[ctx.job_id] += 1
        if not fix.exists():
            raise InputError(f"{fix.name} is missing")
        return fix.read_text()

    async def wf_hold(ctx: JobContext) -> str:
        """Wait at the tally's gate (until the test opens it, or the job is cancelled)."""
        tally.runs[ctx.job_id] += 1
        await tally.gate.wait()
        return "released"

    return {"wf_square": wf_square, "wf_count": wf_count, "wf_needs": wf_needs,
            "wf_hold": wf_hold}  # fmt: skip


def registry(tally: Tally) -> Registry:
    """The workflow tests' handlers, by command name, the counting ones over ``tally``."""
    stateless = {name: fn for name, fn in globals().items() if name.startswith("wf_")}
    funcs = {**stateless, **_counting(tally)}
    return Registry(build_handler(name, fn) for name, fn in funcs.items())
