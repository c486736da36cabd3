"""Top-level task functions for the CPU pool tests.

Spawned workers import this module by name: pytest puts ``tests/unit`` on ``sys.path`` and
multiprocessing's spawn start method hands the parent's ``sys.path`` to the child.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Callable

import structlog

from reactor.errors import InputError, Retry

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
