"""A stand-in reactor for the pool's lifeline tests: a process that runs a CPU pool.

``python -m tests.unit.pool_parent MODE TASK PORT`` runs one task in a one-worker pool. ``TASK``
names a function in ``tests.unit.pool_tasks`` that reports its pids to ``PORT``, then keeps its
worker busy. The test then kills or freezes this process. Modes:

* ``busy``: just run the task;
* ``idle``: the task returns; the worker then waits for work until this process dies;
* ``keepalive``: run it under a 2 s keep-alive extended every 0.25 s. On SIGCONT after a
  freeze, say what happened, then run one more task.

What it prints for the test is one JSON object per line, after ``SAYS``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import time
from collections.abc import Callable

from reactor.errors import LeaseExpired
from reactor.pool import CpuPool, KeepAlive
from tests.unit import pool_tasks

KEEPALIVE_S = 2.0
SAYS = "pool_parent: "  # marks this script's own lines among the pool's log lines


def say(fact: dict[str, object]) -> None:
    print(SAYS + json.dumps(fact), flush=True)


async def keep_extending(keepalive: KeepAlive) -> None:
    while True:
        await asyncio.sleep(0.25)
        keepalive.extend(time.monotonic() + KEEPALIVE_S)


async def main(mode: str, task_name: str, port: int) -> None:
    task = getattr(pool_tasks, task_name)
    async with CpuPool(1) as pool:
        if mode == "idle":
            pid = await pool.run(task, {"port": port}, timeout_s=60)
            say({"idle": pid})
            await asyncio.Event().wait()
        elif mode == "busy":
            await pool.run(task, {"port": port}, timeout_s=None)
        else:
            await run_under_keepalive(pool, task, port)


async def run_under_keepalive(pool: CpuPool, task: Callable[..., object], port: int) -> None:
    keepalive = KeepAlive.lasting(KEEPALIVE_S)
    extender = asyncio.create_task(keep_extending(keepalive))
    try:
        await pool.run(task, {"port": port}, timeout_s=None, keepalive=keepalive)
    except LeaseExpired as exc:
        say({"outcome": "LeaseExpired", "message": str(exc)})
    finally:
        extender.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await extender
    say({"restarts": dict(pool.restarts)})
    say({"next": await pool.run(pool_tasks.echo, {"value": 42}, timeout_s=60)})


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
