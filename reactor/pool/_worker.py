"""The loop a CPU pool worker process runs: one task at a time, as told over its task pipe.

For each task the worker enters the task's working directory (and returns to its own afterwards,
whatever happens), installs a progress sink that sends ``ctx.progress`` reports to the parent,
binds the task's log context, calls the function and sends back a :class:`Reply`. The reply is
pickled before it is sent, so a value that cannot cross the process boundary becomes a
:class:`HandlerFailed` instead of a half-written message. The message formats are in
``reactor.pool._protocol``; the watchdog process that stops a worker its reactor cannot, in
``reactor.pool._watchdog``.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import signal
import socket
import sys
from collections.abc import Callable, Iterator, Mapping
from multiprocessing.connection import Connection
from typing import Any

import structlog

import reactor.logging
from reactor import joblog, progress, usage
from reactor.errors import JobError, Retry, WorkdirUnavailable
from reactor.handler import JobContext
from reactor.log_processors import DEFAULT_MAX_LINE_BYTES
from reactor.pool._courier import Courier
from reactor.pool._leftovers import end_leftovers
from reactor.pool._protocol import (
    FINISHED,
    READY,
    TASK_HEADER,
    Reply,
    Task,
    handler_failed,
    type_name,
)
from reactor.pool._watchdog import die_with_parent, start_watchdog

# Native libraries (Tesseract through OpenMP, OpenBLAS) start one thread per core by default;
# with one worker per core that oversubscribes the machine. The tesseract binary inherits these.
THREAD_LIMITS = {"OMP_THREAD_LIMIT": "1", "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}


def main(
    conn: Connection,
    control: socket.socket,
    parent_pid: int,
    log_format: reactor.logging.LogFormat,
    log_level: str,
    show_locals: bool = False,
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
) -> None:
    """Entry point of a worker process: set up, say ready, then serve tasks until told to stop."""
    os.environ.update(THREAD_LIMITS)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when workers stop
    os.setpgid(0, 0)  # a group of its own, so a kill also reaches subprocesses such as tesseract
    finished, watchdog = start_watchdog(control)  # before any thread; it kills the group
    die_with_parent(parent_pid)
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    reactor.logging.configure(
        log_format, log_level, show_locals=show_locals, max_line_bytes=max_line_bytes
    )
    usage.install_wait4()  # each reaped child's memory peak (tesseract) is noted
    courier = Courier(conn)
    home = os.open(os.curdir, os.O_RDONLY)  # where to return after each task, even if renamed
    try:
        courier.send(READY)
        while message := conn.recv_bytes():
            (seq,) = TASK_HEADER.unpack_from(message)
            reply = _serve(message[TASK_HEADER.size :], seq, courier, home)
            reply = reply._replace(left_processes=end_leftovers(keep={watchdog}))
            finished.send(FINISHED.pack(seq))  # the deadline is over: the task ran in time
            courier.reply(_encode(reply))
    except (EOFError, OSError):
        pass  # the parent went away: nobody is left to serve
    finally:
        conn.close()


def _serve(payload: bytes, seq: int, courier: Courier, home: int) -> Reply:
    try:
        task: Task = pickle.loads(payload)
    except Exception as exc:  # e.g. the handler's module cannot be imported here
        return Reply(
            False, handler_failed(f"the task could not be loaded: {exc}", exc), rss_bytes()
        )
    fn, kwargs, log_context, cwd, log_target = task
    job_ids = {value.job_id for value in kwargs.values() if isinstance(value, JobContext)}
    previous = progress.set_sink(courier.open(seq, job_ids))
    try:
        return _run(fn, kwargs, log_context, cwd, home, log_target)
    finally:
        progress.set_sink(previous)


def _run(
    fn: Callable[..., Any],
    kwargs: dict[str, Any],
    log_context: Mapping[str, Any],
    cwd: str | None,
    home: int,
    log_target: joblog.Target | None = None,
) -> Reply:
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(**log_context)
    meter = usage.Meter()
    try:
        with working_directory(cwd, home), joblog.capture(log_target), meter.measure():
            value = fn(**kwargs)
        return Reply(True, value, rss_bytes(), usage=meter.usage)
    except (JobError, Retry) as exc:
        return Reply(False, exc, rss_bytes(), usage=meter.usage)
    except Exception as exc:
        return Reply(False, handler_failed(str(exc), exc), rss_bytes(), usage=meter.usage)
    finally:
        structlog.contextvars.clear_contextvars()


@contextlib.contextmanager
def working_directory(cwd: str | None, home: int) -> Iterator[None]:
    """Run the block in ``cwd`` (if given), then return to the directory open as ``home``."""
    if cwd is None:
        yield
        return
    try:
        os.chdir(cwd)
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise WorkdirUnavailable(f"cannot enter the job directory {cwd!r}: {reason}") from None
    try:
        yield
    finally:
        os.fchdir(home)


def _encode(reply: Reply) -> bytes:
    try:
        return pickle.dumps(reply)
    except Exception as exc:
        what = "return value" if reply.ok else "exception"
        message = f"the {what} of type {type_name(type(reply.value))} could not be sent back: {exc}"
        failure = handler_failed(message, exc)
        return pickle.dumps(
            Reply(False, failure, reply.rss_bytes, reply.left_processes, reply.usage)
        )


def rss_bytes() -> int:
    """This process's current resident set size."""
    try:
        with open("/proc/self/statm", "rb") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:  # not Linux: the peak is the best we have (KiB on Linux, bytes on macOS)
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak if sys.platform == "darwin" else peak * 1024
