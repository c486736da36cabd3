"""Real ``reactor run`` processes for the integration suite (no in-process shortcuts)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from tests.integration.backends import Backend

HANDLERS = Path(__file__).with_name("proc_handlers.py")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start(
    backend: Backend, db: str, name: str, tmp_path: Path, **env: str | int | float
) -> subprocess.Popen[bytes]:
    """Start ``reactor run`` named ``name``; its log goes to ``<tmp_path>/<name>.log``."""
    settings = {
        "REACTOR_MONGO_URI": backend.uri,
        "REACTOR_DB": db,
        "REACTOR_JOBS_ROOT": str(tmp_path / "jobs"),
        "REACTOR_LEASE_S": "2",
        "REACTOR_HTTP_PORT": "0",
        "REACTOR_LOG_FORMAT": "json",
        "REACTOR_MAX_JOBS": "8",
        "REACTOR_WORKER_NAME": name,
        "REACTOR_HANDLER_MODULES": str(HANDLERS),
        **{f"REACTOR_{key.upper()}": str(value) for key, value in env.items()},
    }
    with open(tmp_path / f"{name}.log", "ab") as log:  # the child keeps its own descriptor
        return subprocess.Popen(
            [sys.executable, "-m", "reactor.cli", "run"],
            env={**os.environ, **settings},
            stdout=log,
            stderr=subprocess.STDOUT,
        )


@contextmanager
def reactor_process(
    backend: Backend, db: str, name: str, tmp_path: Path, **env: str | int | float
) -> Iterator[subprocess.Popen[bytes]]:
    proc = start(backend, db, name, tmp_path, **env)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def until(check: Callable[[], Any], timeout_s: float, what: str, every_s: float = 0.1) -> Any:
    """Repeat ``check`` (a probe of another process) until it returns something truthy."""
    deadline = time.monotonic() + timeout_s
    while True:
        found = check()
        if found:
            return found
        assert time.monotonic() < deadline, f"not within {timeout_s:g} s: {what}"
        time.sleep(every_s)


def readyz(port: int) -> tuple[int, Any] | None:
    """``/readyz`` of a reactor process: (status code, body), or None if it does not answer."""
    try:
        response = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2)
    except httpx.HTTPError:
        return None
    return response.status_code, response.json()
