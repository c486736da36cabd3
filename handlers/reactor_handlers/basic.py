"""Handlers for tests, demos and benchmarks: they exercise the reactor, not the machine."""

from __future__ import annotations

import time
from typing import Any

import anyio

from reactor.handler import handler


@handler(runs="loop", version="1")
async def echo(**args: Any) -> dict[str, Any]:
    """Return the job's arguments unchanged."""
    return args


@handler(runs="loop", version="1")
async def sleep(seconds: float = 0.1, blocking: bool = False) -> dict[str, float]:
    """Wait ``seconds`` on the loop (or block a thread with ``blocking``) and report it."""
    if blocking:
        await anyio.to_thread.run_sync(time.sleep, seconds)
    else:
        await anyio.sleep(seconds)
    return {"slept_s": seconds}
