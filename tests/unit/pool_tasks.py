"""Top-level task functions for the CPU pool tests.

Spawned workers import this module by name, ``tests.unit.pool_tasks``: pytest puts the
repository root on ``sys.path`` and multiprocessing's spawn start method hands the parent's
``sys.path`` to the child.
"""

from __future__ import annotations

import ctypes
import os
import socket
import subprocess
import threading
import time
from collections.abc import Callable

import structlog

from reactor.errors import InputError, Retry
from reactor.handler import JobContext

_held: list[bytes] = []  # memory a task keeps, as a leaking native library would


def echo(value: object) -> object:
    return value


def pid() -> int:
    return os.getpid()


def sleep_then_pid(seconds: float) -> int:
    time.sleep(seconds)
    return os.getpid()


def report_pid_then_spin(port: int) -> None:
    """Tell the test which process runs this task, then never return."""
    with socket.create_connection(("127.0.0.1", port)) as conn:
        conn.sendall(f"{os.getpid()}\n".encode())
    while True:
        pass


def start_subprocess_then_spin(port: int) -> None:
    """Start a long-running subprocess, as pytesseract does, tell the test its pid, never return."""
    child = subprocess.Popen(["sleep", "1000"])
    with socket.create_connection(("127.0.0.1", port)) as conn:
        conn.sendall(f"{child.pid}\n".encode())
    while True:
        pass


def exit_with(code: int) -> None:
    os._exit(code)


def kill_self(signum: int) -> None:
    os.kill(os.getpid(), signum)
    time.sleep(60)  # a signal can take a moment to land


def hold_memory(mb: int) -> int:
    _held.append(b"x" * (mb * 2**20))  # written, so resident
    return os.getpid()


def raise_input_error(retryable: bool) -> None:
    raise InputError("bad", retryable=retryable)


def raise_retry() -> None:
    raise Retry("later", delay_s=2.5)


def raise_value_error() -> None:
    raise ValueError("boom")


def return_lambda() -> Callable[[], int]:
    return lambda: 1


def environ(name: str) -> str | None:
    return os.environ.get(name)


def log_event(event: str) -> None:
    structlog.get_logger("pool_tasks").info(event, detail=7)


def report_pids_then_spin(port: int, seconds: float = 1000.0) -> None:
    """Start a subprocess, tell the test both pids (``worker child``), then keep a core busy."""
    child = subprocess.Popen(["sleep", "60"])
    with socket.create_connection(("127.0.0.1", port)) as conn:
        conn.sendall(f"{os.getpid()} {child.pid}\n".encode())
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        pass


def report_pids_then_hold_gil(port: int, seconds: int = 1000) -> None:
    """Start a subprocess, tell the test both pids, then sleep in native code holding the GIL.

    No other Python thread of the worker can run meanwhile.
    """
    child = subprocess.Popen(["sleep", "60"])
    with socket.create_connection(("127.0.0.1", port)) as conn:
        conn.sendall(f"{os.getpid()} {child.pid}\n".encode())
    ctypes.PyDLL(None).sleep(seconds)


def pdeathsig() -> int:
    """The signal the kernel sends this process when its parent dies (0: none)."""
    libc = ctypes.CDLL(None, use_errno=True)
    signum = ctypes.c_int(0)
    if libc.prctl(2, ctypes.byref(signum), 0, 0, 0) != 0:  # PR_GET_PDEATHSIG
        raise OSError(ctypes.get_errno(), "prctl")
    return signum.value


def leak_thread(seconds: float) -> int:
    """Leave a non-daemon thread running, so the worker cannot exit for ``seconds``."""
    threading.Thread(target=time.sleep, args=(seconds,)).start()
    return os.getpid()


def cwd() -> str:
    return os.getcwd()


def write_relative(name: str, text: str) -> str:
    """Write ``text`` to ``name`` relative to the working directory; return that directory."""
    with open(name, "w") as out:
        out.write(text)
    return os.getcwd()


def chdir_to(path: str) -> str:
    os.chdir(path)
    return os.getcwd()


def report_steps(ctx: JobContext, steps: int, pause_s: float) -> str:
    for step in range(1, steps + 1):
        ctx.progress(step / steps, f"step {step}")
        time.sleep(pause_s)
    return "done"


def report_then_wait(ctx: JobContext, port: int) -> str:
    """Report half way, then wait until the test says go (over the port)."""
    ctx.progress(0.5, "half way")
    with socket.create_connection(("127.0.0.1", port)) as conn:
        conn.sendall(f"{os.getpid()}\n".encode())
        conn.makefile().readline()
    return "released"


def flood_progress(ctx: JobContext, count: int) -> str:
    for i in range(count):
        ctx.progress(i / count, None)
    ctx.progress(1.0, "last")
    return "done"


_stale = threading.Condition()
_stale_reports = 0


def report_from_leftover_thread(ctx: JobContext) -> None:
    """Return at once, leaving a thread that keeps reporting progress for ``ctx``'s job."""

    def keep_reporting() -> None:
        global _stale_reports
        while True:
            ctx.progress(0.5, "stale")
            with _stale:
                _stale_reports += 1
                _stale.notify_all()
            time.sleep(0.001)

    threading.Thread(target=keep_reporting, daemon=True).start()


def report_while_stale_reports_arrive(ctx: JobContext, stale: int) -> int:
    """Report, and return once the leftover thread has reported ``stale`` more times meanwhile."""
    with _stale:
        start = _stale_reports
    ctx.progress(0.25, "fresh")
    with _stale:
        if not _stale.wait_for(lambda: _stale_reports >= start + stale, timeout=60):
            raise TimeoutError("the leftover thread stopped reporting")
        seen = _stale_reports - start
    ctx.progress(1.0, "fresh")
    return seen


def report_pid_then_return(port: int) -> int:
    with socket.create_connection(("127.0.0.1", port)) as conn:
        conn.sendall(f"{os.getpid()}\n".encode())
    return os.getpid()


def leave_children(count: int) -> list[int]:
    """Start ``count`` long sleeps and return without waiting for them; their pids."""
    import subprocess

    return [subprocess.Popen(["sleep", "313"]).pid for _ in range(count)]
