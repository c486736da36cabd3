"""The machine a bench ran on, and its load: load averages, and what else used the CPU meanwhile.

:class:`LoadWatcher` tells what else used the CPU while the bench ran. Other processes' CPU time
is the machine's busy time (``/proc/stat``, steal included) less the bench's own: its process, the
children it reaped and every live descendant with the children they reaped, so short-lived
processes count too. To name the busiest, a thread samples ``/proc`` every few seconds and charges
each process that is not the bench's the CPU time it used meanwhile. :meth:`LoadWatcher.others`
lets each case record how many cores other processes kept busy, and how many sat idle.
"""

from __future__ import annotations

import contextlib
import os
import platform
import resource
import shutil
import subprocess
import threading
import time
from importlib.metadata import version
from pathlib import Path
from typing import Any

from procs import CLK_TCK, PEER_PYTHON, ROOT, _stat, cpu_s, parents, tree

SAMPLE_S = 2.0


def describe() -> dict[str, Any]:
    """Cores, CPU model, memory, OS, and the versions of everything measured."""
    return {
        "cores": len(os.sched_getaffinity(0)),
        "cpu_model": _cpu_model(),
        "memory_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1e9, 1),
        "os": _os_name(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "versions": {
            "mongo-reactor": version("mongo-reactor"),
            "mongo-reactor commit": _command(
                ["git", "-C", str(ROOT), "describe", "--always", "--dirty"]
            ),
            "pymongo": version("pymongo"),
            "peer python": _command(
                [str(PEER_PYTHON), "-c", "import platform; print(platform.python_version())"]
            ),
            "celery": _peer_version("celery"),
            "kombu": _peer_version("kombu"),
            "redis-py": _peer_version("redis"),
            "redis-server": _command(["redis-server", "--version"]).split(" v=")[-1].split()[0],
            "tesseract": _command(["tesseract", "--version"]).splitlines()[0],
        },
        "docker_engine": docker_engine(),
    }


def docker_engine() -> bool:
    """Whether a Docker engine answers (a ``docker`` client alone is not enough)."""
    if shutil.which("docker") is None:
        return False
    done = subprocess.run(["docker", "info"], capture_output=True, timeout=30, check=False)
    return done.returncode == 0


def _cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def _os_name() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                return line.split("=", 1)[1].strip('"')
    return platform.platform()


def _command(argv: list[str]) -> str:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
    except OSError as exc:
        return f"unavailable ({exc.strerror})"
    return (done.stdout or done.stderr).strip() or f"unavailable (exit {done.returncode})"


def machine_cpu_s() -> tuple[float, float]:
    """The machine's busy and idle CPU seconds since boot (all cores; steal counts as busy)."""
    first = Path("/proc/stat").read_text().split("\n", 1)[0].split()
    user, nice, system, idle, iowait, irq, softirq, steal = (int(x) for x in first[1:9])
    return (user + nice + system + irq + softirq + steal) / CLK_TCK, (idle + iowait) / CLK_TCK


def own_cpu_s() -> float:
    """CPU seconds of this process, the children it reaped, and its live descendants."""
    me = resource.getrusage(resource.RUSAGE_SELF)
    reaped = resource.getrusage(resource.RUSAGE_CHILDREN)
    mine = me.ru_utime + me.ru_stime + reaped.ru_utime + reaped.ru_stime
    return mine + cpu_s(tree(os.getpid())[1:])


def _peer_version(package: str) -> str:
    code = f"from importlib.metadata import version; print(version({package!r}))"
    return _command([str(PEER_PYTHON), "-c", code])


class LoadWatcher:
    """Load averages at start and stop, and the CPU other processes used in between."""

    def __init__(self) -> None:
        self._me = os.getpid()
        self._start_ticks = _now_ticks()
        self._lock = threading.Lock()
        self._base: dict[int, int] = {}
        self._last: dict[int, int] = {}
        self._names: dict[int, str] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="load-watcher", daemon=True)

    def start(self) -> LoadWatcher:
        self.started = time.monotonic()
        self.load_before = os.getloadavg()
        self._origin = self.others()
        self._sample(first=True)
        self._thread.start()
        return self

    def stop(self) -> dict[str, Any]:
        self._stop.set()
        self._thread.join()
        self._sample(first=False)
        wall_s = time.monotonic() - self.started
        others_s, idle_s = (
            now - then for now, then in zip(self.others(), self._origin, strict=True)
        )
        used: dict[str, float] = {}
        for pid, last in self._last.items():
            name = self._names[pid]
            used[name] = used.get(name, 0.0) + (last - self._base[pid]) / CLK_TCK
        others = sorted(((s, n) for n, s in used.items() if s >= 0.5), reverse=True)
        return {
            "load_average_before": [round(x, 2) for x in self.load_before],
            "load_average_after": [round(x, 2) for x in os.getloadavg()],
            "wall_s": round(wall_s, 1),
            "other_processes_cpu_s": round(others_s, 1),
            "other_processes_cores_busy": round(others_s / wall_s, 2),
            "idle_cores": round(idle_s / wall_s, 2),
            "busiest_other_processes": [
                {"command": n, "cpu_s": round(s, 1)} for s, n in others[:8]
            ],
        }

    @staticmethod
    def others() -> tuple[float, float]:
        """CPU seconds other processes have used since boot, and idle seconds, as of now."""
        busy, idle = machine_cpu_s()
        return busy - own_cpu_s(), idle

    def _run(self) -> None:
        while not self._stop.wait(SAMPLE_S):
            self._sample(first=False)

    def _sample(self, first: bool) -> None:
        with self._lock:
            self._sample_locked(first)

    def _sample_locked(self, first: bool) -> None:
        parent_of = parents()
        ours = set(tree(self._me, parent_of))
        for pid in parent_of:
            if pid in ours:
                continue
            with contextlib.suppress(OSError, IndexError, ValueError):
                fields = _stat(pid)
                ticks = int(fields[11]) + int(fields[12])
                if pid not in self._base:
                    started_during = not first and int(fields[19]) >= self._start_ticks
                    self._base[pid] = 0 if started_during else ticks
                    self._names[pid] = _cmdline(pid)
                self._last[pid] = ticks


def _now_ticks() -> int:
    """Clock ticks since boot, the unit of a process's start time in ``/proc/PID/stat``."""
    uptime_s = float(Path("/proc/uptime").read_text().split()[0])
    return int(uptime_s * CLK_TCK)


def _cmdline(pid: int) -> str:
    raw = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    return raw.strip()[:100] or f"[{Path(f'/proc/{pid}/comm').read_text().strip()}]"
