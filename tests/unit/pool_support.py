"""What the CPU pool tests share: a port tasks report pids to, and waits on process exits."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field


@dataclass
class Reports:
    """Lines of space-separated pids that tasks sent to ``port``, one tuple per connection."""

    port: int = 0
    lines: asyncio.Queue[tuple[int, ...]] = field(default_factory=asyncio.Queue)
    writers: list[asyncio.StreamWriter] = field(default_factory=list)

    async def next(self, timeout_s: float = 60) -> tuple[int, ...]:
        async with asyncio.timeout(timeout_s):
            return await self.lines.get()

    def release_all(self) -> None:
        """Let tasks that wait for the test's word go on."""
        for writer in self.writers:
            writer.write(b"go\n")


@asynccontextmanager
async def reports_server() -> AsyncIterator[Reports]:
    reports = Reports()

    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        reports.writers.append(writer)
        line = await reader.readline()
        reports.lines.put_nowait(tuple(int(pid) for pid in line.split()))

    server = await asyncio.start_server(on_connect, "127.0.0.1", 0)
    reports.port = server.sockets[0].getsockname()[1]
    try:
        yield reports
    finally:
        for writer in reports.writers:
            writer.close()
        server.close()
        await server.wait_closed()


def watchdog_of(worker: int, timeout_s: float = 30) -> int:
    """The pid of a worker's watchdog process (a child of the worker named ``pool-watchdog``).

    The watchdog names itself just after the fork, so on a busy machine a task can report its
    pids before the name is set: look again until it appears.
    """
    deadline = time.monotonic() + timeout_s
    while (pid := _named_child(worker, "pool-watchdog")) is None:
        if time.monotonic() > deadline:
            raise LookupError(f"worker {worker} has no watchdog process")
        time.sleep(0.02)
    return pid


def _named_child(parent: int, name: str) -> int | None:
    with open(f"/proc/{parent}/task/{parent}/children") as children:
        for pid in children.read().split():
            with contextlib.suppress(FileNotFoundError), open(f"/proc/{pid}/comm") as comm:
                if comm.read().strip() == name:
                    return int(pid)
    return None


def exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def exited(pidfd: int) -> None:
    """Wait until the process behind ``pidfd`` has exited (it may still await reaping)."""
    loop = asyncio.get_running_loop()
    done = loop.create_future()
    loop.add_reader(pidfd, done.set_result, None)
    try:
        await done
    finally:
        loop.remove_reader(pidfd)


@asynccontextmanager
async def watching(*pids: int) -> AsyncIterator[list[int]]:
    """Pidfds for ``pids``, opened now (before a pid can be reused).

    On the way out, any of them still running (the test failed) is killed, then the pidfds
    are closed: a failed test leaves no process behind.
    """
    pidfds = [os.pidfd_open(pid) for pid in pids]
    try:
        yield pidfds
    finally:
        for pidfd in pidfds:
            with contextlib.suppress(ProcessLookupError):
                signal.pidfd_send_signal(pidfd, signal.SIGKILL)
            os.close(pidfd)


async def all_exited(pidfds: list[int], within_s: float) -> None:
    """Wait until every process has exited; ``TimeoutError`` if that takes over ``within_s``."""
    async with asyncio.timeout(within_s):
        await asyncio.gather(*(exited(pidfd) for pidfd in pidfds))
