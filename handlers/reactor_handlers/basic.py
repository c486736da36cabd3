"""Handlers for tests, demos and benchmarks: they exercise the reactor, not the machine."""

from __future__ import annotations

import threading
from typing import Any

import anyio

from reactor.handler import handler


@handler(runs="loop", version="1")
async def echo(**args: Any) -> dict[str, Any]:
    """Return the job's arguments unchanged."""
    return args


@handler(runs="loop", version="1")
async def sleep(seconds: float = 0.1, blocking: bool = False) -> dict[str, float]:
    """Wait ``seconds`` on the loop (or block a thread with ``blocking``) and report it.

    Both ways honour the job's timeout and cancellation: a blocking wait is abandoned at once
    and its thread is woken, so it does not linger (a lingering thread would delay shutdown).
    """
    if blocking:
        wake = threading.Event()
        try:
            await anyio.to_thread.run_sync(wake.wait, seconds, abandon_on_cancel=True)
        finally:
            wake.set()
    else:
        await anyio.sleep(seconds)
    return {"slept_s": seconds}
