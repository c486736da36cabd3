"""The processes the bench starts, and what it reads of them from ``/proc``.

Every server runs in a process of its own, started here and stopped by its PID: the double
(``reactor dev-mongo``), ``reactor run`` (plain, or through ``reactor_probe.py`` when its MongoDB
commands are counted), ``redis-server`` on a free loopback port, and a Celery prefork worker from
the peer's virtual environment. CPU time is read per process tree: a process's own time plus that
of the children it has reaped (``cutime``/``cstime``, e.g. finished ``tesseract`` runs), summed
over it and every live descendant.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

CLK_TCK = os.sysconf("SC_CLK_TCK")
BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
PEER_VENV = Path(os.environ.get("BENCH_PEER_VENV", ROOT / ".venv-bench-peer"))
PEER_PYTHON = PEER_VENV / "bin" / "python"
HANDLERS = BENCH / "bench_handlers.py"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_listening(port: int, proc: subprocess.Popen[bytes], timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args!r} exited with {proc.returncode} before listening")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
            return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port} after {timeout_s} s")


def _stat(pid: int) -> list[str]:
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().rsplit(")", 1)[1].split()  # fields from the 3rd (state) on


def parents() -> dict[int, int]:
    """Every live process's parent, by PID."""
    found = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError, IndexError):
                found[int(entry)] = int(_stat(int(entry))[1])
    return found


def tree(pid: int, parent_of: Mapping[int, int] | None = None) -> list[int]:
    """``pid`` and its live descendants."""
    parent_of = parents() if parent_of is None else parent_of
    children: dict[int, list[int]] = {}
    for child, parent in parent_of.items():
        children.setdefault(parent, []).append(child)
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(children.get(current, []))
    return found


def cpu_s(pids: Sequence[int]) -> float:
    """CPU seconds of ``pids`` and of the children they reaped (vanished PIDs count 0)."""
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            fields = _stat(pid)
            total += sum(int(f) for f in fields[11:15])  # utime stime cutime cstime
    return total / CLK_TCK


def rss_mb(pid: int) -> float:
    """Resident memory of one process (VmRSS), in MB (10^6 bytes)."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024 / 1e6
    return 0.0


@dataclass
class Service:
    """One started server process; its tree is what its CPU and memory are read from."""

    name: str
    proc: subprocess.Popen[bytes]
    log: Path | None = None
    extra: dict[str, object] = field(default_factory=dict)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def pids(self) -> list[int]:
        return tree(self.proc.pid)

    def cpu_s(self) -> float:
        return cpu_s(self.pids())

    def rss_mb(self) -> float:
        return rss_mb(self.proc.pid)

    def tree_rss_mb(self) -> float:
        total = 0.0
        for pid in self.pids():
            with contextlib.suppress(OSError):
                total += rss_mb(pid)
        return total

    def check_alive(self) -> None:
        if self.proc.poll() is not None:
            raise RuntimeError(f"{self.name} exited with {self.proc.returncode}{self._log_tail()}")

    def _log_tail(self) -> str:
        if self.log is None or not self.log.exists():
            return ""
        return "; its log ends:\n" + "\n".join(self.log.read_text().splitlines()[-15:])

    def stop(self, timeout_s: float = 30) -> None:
        """SIGTERM, then SIGKILL after ``timeout_s``; descendants left behind are killed by PID."""
        members = self.pids() if self.proc.poll() is None else []
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        for pid in members[1:]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def start(
    name: str,
    argv: Sequence[str],
    logs: Path,
    env: Mapping[str, str] | None = None,
    cwd: Path = ROOT,
) -> Service:
    log = logs / f"{name}.log"
    out: IO[bytes] = open(log, "ab")  # noqa: SIM115 (the child keeps it; closed by the OS)
    proc = subprocess.Popen(
        list(argv), cwd=cwd, env={**os.environ, **(env or {})}, stdout=out, stderr=out
    )
    out.close()
    return Service(name, proc, log)


def start_double(logs: Path, name: str = "double") -> Service:
    port = free_port()
    argv = [sys.executable, "-m", "reactor.cli", "dev-mongo", "--port", str(port)]
    service = start(name, argv, logs)
    wait_listening(port, service.proc)
    service.extra["uri"] = f"mongodb://127.0.0.1:{port}/?replicaSet=rs0"
    return service


def reactor_env(uri: str, jobs_root: Path, **settings: str) -> dict[str, str]:
    env = {
        "REACTOR_MONGO_URI": uri,
        "REACTOR_DB": "bench",
        "REACTOR_JOBS_ROOT": str(jobs_root),
        "REACTOR_HTTP_PORT": "0",
        "REACTOR_LOG_LEVEL": "warning",
        "REACTOR_LOG_FORMAT": "json",
        "REACTOR_HANDLER_MODULES": str(HANDLERS),
    }
    env.update({f"REACTOR_{key.upper()}": value for key, value in settings.items()})
    return env


def start_reactor(
    name: str, uri: str, jobs_root: Path, logs: Path, counts: Path | None = None, **settings: str
) -> Service:
    """``reactor run``; with ``counts``, through the probe that counts its MongoDB commands."""
    env = reactor_env(uri, jobs_root, **settings)
    if counts is None:
        argv = [sys.executable, "-m", "reactor.cli", "run"]
    else:
        argv = [sys.executable, str(BENCH / "reactor_probe.py"), str(counts)]
    return start(name, argv, logs, env)


def start_redis(logs: Path) -> Service:
    port = free_port()
    argv = [
        "redis-server",
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
        "--dir",
        str(logs),
        "--loglevel",
        "warning",
    ]
    service = start("redis", argv, logs)
    wait_listening(port, service.proc)
    service.extra["url"] = f"redis://127.0.0.1:{port}/0"
    return service


def start_celery(redis_url: str, logs: Path, concurrency: int = 2) -> Service:
    """A Celery prefork worker (``benchmarks/peer/celery_app.py``) on the peer's interpreter."""
    argv = [
        str(PEER_PYTHON),
        "-m",
        "celery",
        "-A",
        "celery_app",
        "worker",
        "--pool=prefork",
        f"--concurrency={concurrency}",
        "--loglevel=WARNING",
        "--without-gossip",
        "--without-mingle",
        "--without-heartbeat",
    ]
    return start("celery", argv, logs, {"BENCH_REDIS_URL": redis_url}, cwd=BENCH / "peer")
