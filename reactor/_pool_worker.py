"""One worker of the CPU pool, both ends: the loop the process runs, and the parent's handle on it.

The protocol on the worker's own duplex pipe, all pickled:

* parent → worker: ``(fn, kwargs, log_context)`` to run a task, ``None`` to exit;
* worker → parent: ``READY`` once after start-up, then one :class:`Reply` per task.

The worker pickles its reply before sending, so a value that cannot cross the process boundary
becomes a :class:`HandlerFailed` instead of a half-written message.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pickle
import signal
import sys
import traceback
from collections.abc import Callable, Mapping
from multiprocessing.connection import Connection
from multiprocessing.context import SpawnContext, SpawnProcess
from typing import Any, NamedTuple

import structlog

import reactor.logging
from reactor.errors import HandlerFailed, JobError, PoolError, Retry

READY = "ready"
STOP = pickle.dumps(None)

# Native libraries (Tesseract through OpenMP, OpenBLAS) start one thread per core by default;
# with one worker per core that oversubscribes the machine. The tesseract binary inherits these.
THREAD_LIMITS = {"OMP_THREAD_LIMIT": "1", "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}

Task = tuple[Callable[..., Any], dict[str, Any], Mapping[str, Any]]


class Reply(NamedTuple):
    """One task's outcome: a value, or an exception to raise in the parent."""

    ok: bool
    value: Any  # the return value, or a JobError / Retry
    rss_bytes: int  # the worker's resident memory after the task


# -- in the worker process ------------------------------------------------------------------------


def main(conn: Connection, log_format: reactor.logging.LogFormat, log_level: str) -> None:
    """Entry point of a worker process: set up, say ready, then serve tasks until told to stop."""
    os.environ.update(THREAD_LIMITS)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when workers stop
    os.setpgid(0, 0)  # a group of its own, so a kill also reaches subprocesses such as tesseract
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    reactor.logging.configure(log_format, log_level)
    try:
        conn.send(READY)
        while (reply := _serve(conn.recv_bytes())) is not None:
            conn.send_bytes(_encode(reply))
    except (EOFError, OSError):
        pass  # the parent went away: nobody is left to serve
    finally:
        conn.close()


def _serve(data: bytes) -> Reply | None:
    try:
        task: Task | None = pickle.loads(data)
    except Exception as exc:  # e.g. the handler's module cannot be imported here
        return Reply(
            False, handler_failed(f"the task could not be loaded: {exc}", exc), rss_bytes()
        )
    return None if task is None else _run(*task)


def _run(fn: Callable[..., Any], kwargs: dict[str, Any], log_context: Mapping[str, Any]) -> Reply:
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(**log_context)
    try:
        return Reply(True, fn(**kwargs), rss_bytes())
    except (JobError, Retry) as exc:
        return Reply(False, exc, rss_bytes())
    except Exception as exc:
        return Reply(False, handler_failed(str(exc), exc), rss_bytes())
    finally:
        structlog.contextvars.clear_contextvars()


def _encode(reply: Reply) -> bytes:
    try:
        return pickle.dumps(reply)
    except Exception as exc:
        what = "return value" if reply.ok else "exception"
        message = f"the {what} of type {type_name(type(reply.value))} could not be sent back: {exc}"
        return pickle.dumps(Reply(False, handler_failed(message, exc), reply.rss_bytes))


def handler_failed(message: str, exc: BaseException) -> HandlerFailed:
    """A picklable stand-in for ``exc``, keeping its type name and traceback as text."""
    return HandlerFailed(
        message,
        type_name=type_name(type(exc)),
        remote_traceback="".join(traceback.format_exception(exc)),
    )


def type_name(cls: type) -> str:
    """``module.QualName``, e.g. ``builtins.ValueError``."""
    return f"{cls.__module__}.{cls.__qualname__}"


def rss_bytes() -> int:
    """This process's current resident set size."""
    try:
        with open("/proc/self/statm", "rb") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:  # not Linux: the peak is the best we have (KiB on Linux, bytes on macOS)
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak if sys.platform == "darwin" else peak * 1024


# -- in the parent ---------------------------------------------------------------------------------


class WorkerProcess:
    """The parent's handle on one worker: its pipe, an event set when it exits, how it ended."""

    def __init__(
        self, process: SpawnProcess, conn: Connection, on_exit: Callable[[WorkerProcess], None]
    ) -> None:
        assert process.pid is not None
        self.process = process
        self.conn = conn
        self.pid: int = process.pid
        self.tasks_done = 0
        self.exited = asyncio.Event()
        self.exitcode: int | None = None  # known once reaped
        self.burial: asyncio.Task[None] | None = None  # set by the pool when it stops the worker
        self._on_exit = on_exit
        self._loop = asyncio.get_running_loop()
        self._wake: asyncio.Future[None] | None = None
        try:  # a pidfd sees the exit even if a subprocess inherited the worker's descriptors
            self._exit_fd, self._own_exit_fd = os.pidfd_open(self.pid), True
        except (AttributeError, OSError):  # not Linux >= 5.3
            self._exit_fd, self._own_exit_fd = process.sentinel, False
        self._loop.add_reader(self._exit_fd, self._exit_seen)

    @classmethod
    def start(
        cls, context: SpawnContext, on_exit: Callable[[WorkerProcess], None], *args: str
    ) -> WorkerProcess:
        """Start a worker process running :func:`main` (``args``: log format and level)."""
        conn, child_conn = context.Pipe(duplex=True)
        process = context.Process(
            target=main, args=(child_conn, *args), name="reactor-cpu-worker", daemon=True
        )
        try:
            process.start()
        except BaseException:
            conn.close()
            raise
        finally:
            child_conn.close()
        return cls(process, conn, on_exit)

    async def wait_ready(self) -> None:
        """Return once the worker has started up; ``EOFError`` if it died first."""
        if (message := pickle.loads(await self.receive())) != READY:
            raise PoolError(f"worker process {self.pid} sent {message!r} instead of {READY!r}")

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
        self.conn.close()
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
