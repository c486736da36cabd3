"""The parent's handle on one CPU pool worker: start it, talk to it, see it exit, kill it, reap it.

Nothing here waits by polling: replies arrive through ``loop.add_reader`` on the task pipe, the
worker's exit through a pidfd (or the process sentinel), and a keep-alive record that finds the
control socket full waits for ``loop.add_writer``. The message formats are in
``reactor.pool._protocol``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
from collections.abc import Callable
from multiprocessing.connection import Connection
from multiprocessing.context import SpawnContext, SpawnProcess
from typing import Any

from reactor.errors import PoolError
from reactor.pool._protocol import DEADLINE, DEADLINE_PASSED, READY, STOP, STOPPING, TASK_HEADER
from reactor.pool._worker import main


class WorkerProcess:
    """One worker: its task pipe and control socket, an event set when it exits, how it ended."""

    def __init__(
        self,
        process: SpawnProcess,
        conn: Connection,
        control: socket.socket,
        on_exit: Callable[[WorkerProcess], None],
    ) -> None:
        assert process.pid is not None
        self.process = process
        self.conn = conn
        self.pid: int = process.pid
        self.seq = 0  # tasks sent so far; the latest one's number
        self.tasks_done = 0
        self.exited = asyncio.Event()
        self.exitcode: int | None = None  # known once reaped
        self.burial: asyncio.Task[None] | None = None  # set by the pool when it stops the worker
        self._control = control  # to the worker's watchdog process
        self._unsent: bytes | None = None  # the latest DEADLINE record, waiting for room
        self._stopping: tuple[bytes, int] | None = None  # why the watchdog ended the group
        self.unwatched = False  # its watchdog died, so the worker was killed
        self._killing = False  # kill() was called: the group's end is ours, not the watchdog's
        self._on_exit = on_exit
        self._loop = asyncio.get_running_loop()
        self._wake: asyncio.Future[None] | None = None
        try:  # a pidfd sees the exit even if a subprocess inherited the worker's descriptors
            self._exit_fd, self._own_exit_fd = os.pidfd_open(self.pid), True
        except (AttributeError, OSError):  # not Linux >= 5.3
            self._exit_fd, self._own_exit_fd = process.sentinel, False
        self._loop.add_reader(self._exit_fd, self._exit_seen)
        self._loop.add_reader(control.fileno(), self._read_control)

    @classmethod
    def start(
        cls, context: SpawnContext, on_exit: Callable[[WorkerProcess], None], *args: Any
    ) -> WorkerProcess:
        """Start a worker process running :func:`main` (``args``: its log settings)."""
        conn, child_conn = context.Pipe(duplex=True)
        control, child_control = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        process = context.Process(
            target=main,
            args=(child_conn, child_control, os.getpid(), *args),
            name="reactor-cpu-worker",
            daemon=True,
        )
        try:
            process.start()
        except BaseException:
            conn.close()
            control.close()
            raise
        finally:  # from here on only the parent holds its ends: the worker's lifeline
            child_conn.close()
            child_control.close()
        control.setblocking(False)
        return cls(process, conn, control, on_exit)

    async def wait_ready(self) -> None:
        """Return once the worker has started up; ``EOFError`` if it died first."""
        if (message := await self.receive()) != READY:
            raise PoolError(f"worker process {self.pid} sent {message!r} instead of {READY!r}")

    def send_task(self, payload: bytes, deadline: float | None) -> int:
        """Send the next task, after its keep-alive deadline if any; returns the task's number.

        ``OSError`` if the worker is gone.
        """
        self.seq += 1
        if deadline is not None:
            self.send_deadline(self.seq, deadline)
        self.conn.send_bytes(TASK_HEADER.pack(self.seq) + payload)
        return self.seq

    def send_deadline(self, seq: int, deadline: float) -> None:
        """Tell the worker task ``seq``'s keep-alive deadline; never blocks, the latest wins."""
        record = DEADLINE.pack(seq, deadline)
        if self._unsent is not None:
            self._unsent = record  # already waiting for room: send the newest when there is
            return
        try:
            self._control.send(record)
        except BlockingIOError:
            self._unsent = record
            self._loop.add_writer(self._control.fileno(), self._send_unsent)
        except OSError:
            pass  # the worker is gone: its exit is seen through the pidfd

    def _send_unsent(self) -> None:
        self._loop.remove_writer(self._control.fileno())
        record, self._unsent = self._unsent, None
        if record is not None:
            self.send_deadline(*DEADLINE.unpack(record))

    def expired(self, seq: int) -> bool:
        """Whether the watchdog said it stopped task ``seq`` at its keep-alive deadline."""
        self._read_control()
        return self._stopping == (DEADLINE_PASSED, seq)

    def _read_control(self) -> None:
        """Note why the watchdog stops the group; end-of-file without a reason: it died."""
        while True:
            try:
                data = self._control.recv(64)
            except BlockingIOError:
                return
            except OSError:
                data = b""
            if not data:
                self._loop.remove_reader(self._control.fileno())
                if self._stopping is None and not self._killing:
                    self.unwatched = True
                    self.kill()  # no worker may run unwatched
                return
            if len(data) == STOPPING.size:
                self._stopping = STOPPING.unpack(data)

    async def receive(self) -> bytes:
        """The next message from the worker; ``EOFError`` if it died first."""
        if not self.exited.is_set():
            self._wake = self._loop.create_future()
            self._loop.add_reader(self.conn.fileno(), _resolve, self._wake)
            try:
                await self._wake
            finally:
                self._loop.remove_reader(self.conn.fileno())
                self._wake = None
        if self.exited.is_set() and not self.conn.poll(0):
            raise EOFError
        try:
            return self.conn.recv_bytes()
        except OSError as exc:
            raise EOFError from exc

    def kill(self) -> None:
        """SIGKILL the worker and its process group (subprocesses such as tesseract)."""
        self._killing = True
        if self.exitcode is not None:
            return  # reaped: the pid may belong to someone else now
        if self.process.exitcode is None:  # (Process.start() reaps its finished siblings)
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGKILL)  # held while any member lives, so never reused

    async def stop(self, grace_s: float) -> None:
        """Ask the worker to exit (if ``grace_s``), kill it, reap it, release its descriptors."""
        try:
            if grace_s > 0 and not self.exited.is_set():
                with contextlib.suppress(OSError):
                    self.conn.send_bytes(STOP)
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(grace_s):
                        await self.exited.wait()
        finally:
            self.kill()  # also when cancelled (the loop is shutting down): no worker outlives us
        await self.exited.wait()
        self.process.join()
        self.exitcode = self.process.exitcode
        self._close()

    def _close(self) -> None:
        self.conn.close()
        self._loop.remove_reader(self._control.fileno())
        if self._unsent is not None:
            self._loop.remove_writer(self._control.fileno())
        self._control.close()
        if self._own_exit_fd:
            os.close(self._exit_fd)
        self.process.close()

    def _exit_seen(self) -> None:
        self._loop.remove_reader(self._exit_fd)
        self.exited.set()
        _resolve(self._wake)
        self._on_exit(self)


def _resolve(future: asyncio.Future[None] | None) -> None:
    if future is not None and not future.done():
        future.set_result(None)


def describe_exit(pid: int, exitcode: int | None) -> str:
    """What became of a worker, e.g. ``worker process 7 died: killed by signal SIGSEGV (11)``."""
    if exitcode is None:
        return f"worker process {pid} died (exit status unknown)"
    if exitcode >= 0:
        return f"worker process {pid} exited with code {exitcode}"
    number = -exitcode
    try:
        name = signal.Signals(number).name
    except ValueError:
        name = "unknown signal"
    text = f"worker process {pid} died: killed by signal {name} ({number})"
    if number == signal.SIGKILL:
        text += "; this is also what an out-of-memory kill looks like"
    return text
