"""Handlers for real ``reactor run`` processes, loaded with REACTOR_HANDLER_MODULES."""

from __future__ import annotations

import os
import time

from reactor.handler import handler


@handler(runs="thread", timeout_s=600)
def kill_reactor(seconds: float = 0.5) -> None:
    """Kill the whole reactor process from a handler thread, as a crashing native call would."""
    time.sleep(seconds)
    os._exit(17)


@handler(runs="thread", timeout_s=1)
def hang_thread() -> None:
    """Block a thread far past the timeout: it is abandoned, not killed."""
    time.sleep(3600)


async def nap(seconds: float) -> dict[str, float]:
    """Wait on the loop."""
    import anyio

    await anyio.sleep(seconds)
    return {"slept_s": seconds}
