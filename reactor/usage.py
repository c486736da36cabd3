"""What one job cost: wall time, and for a CPU-pool job its CPU time and its own memory peak.

A pool worker runs many jobs, so its lifetime figures say nothing about one job. Around each
task the worker takes a :class:`Meter`:

* **CPU**: ``getrusage`` of the worker and of its waited-for children (tesseract), before and
  after; the difference is this job's ``cpu_s``.
* **memory**: on Linux, writing ``5`` to ``/proc/self/clear_refs`` resets the process's
  high-water mark (``VmHWM``) to its current size, so ``VmHWM`` after the task is this job's peak,
  not the worker's lifetime one. A child's peak comes from ``wait4``'s rusage of that child:
  :func:`install_wait4` makes ``os.waitpid`` (what ``subprocess`` calls) go through ``os.wait4``
  and note each reaped child's ``ru_maxrss``. ``max_rss_mb`` is the larger of the worker's and its
  children's peaks. (A child's ``ru_maxrss`` starts at its parent's high-water mark, which exec
  keeps; here that is the worker's peak since the reset, already counted, so it adds nothing.)
  Where ``clear_refs`` is missing (not Linux), the worker's lifetime peak is used, which can
  only overstate.

Loop and thread jobs share the reactor's process: only their wall time is theirs.
"""

from __future__ import annotations

import os
import resource
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CLEAR_REFS = Path("/proc/self/clear_refs")
STATUS = Path("/proc/self/status")
_KIB_PER_MB = 1024.0


@dataclass(frozen=True)
class Usage:
    """One attempt's cost, as stored on its result (``None`` fields are left out)."""

    wall_s: float
    cpu_s: float | None = None
    max_rss_mb: float | None = None

    def to_doc(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"wall_s": round(self.wall_s, 6)}
        if self.cpu_s is not None:
            doc["cpu_s"] = round(self.cpu_s, 6)
        if self.max_rss_mb is not None:
            doc["max_rss_mb"] = round(self.max_rss_mb, 3)
        return doc


class _ChildPeaks:
    """The largest ``ru_maxrss`` (KiB) of the children reaped since the last :meth:`take`."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._peak_kib = 0

    def note(self, maxrss_kib: int) -> None:
        with self._lock:
            self._peak_kib = max(self._peak_kib, maxrss_kib)

    def take(self) -> int:
        with self._lock:
            peak, self._peak_kib = self._peak_kib, 0
            return peak


CHILD_PEAKS = _ChildPeaks()
_original_waitpid = os.waitpid


def _waitpid_noting_rusage(pid: int, options: int, /) -> tuple[int, int]:
    reaped, status, usage = os.wait4(pid, options)
    if reaped:
        CHILD_PEAKS.note(usage.ru_maxrss)
    return reaped, status


def install_wait4() -> None:
    """In a pool worker: reap children through ``wait4`` so each one's peak is known."""
    if hasattr(os, "wait4") and sys.platform.startswith("linux"):
        os.waitpid = _waitpid_noting_rusage


def reset_peak() -> bool:
    """Reset this process's ``VmHWM`` to its current size; whether that was possible."""
    try:
        CLEAR_REFS.write_text("5")
    except OSError:
        return False
    return True


def peak_kib(reset_worked: bool) -> int:
    """This process's memory peak in KiB: since the reset, or its lifetime one without it."""
    if reset_worked:
        try:
            for line in STATUS.read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
        except (OSError, ValueError, IndexError):
            pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak // 1024 if sys.platform == "darwin" else peak


def _cpu_s(who: int) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


class Meter:
    """Measures one task in a pool worker: :meth:`measure` around it, then :attr:`usage`."""

    def __init__(self) -> None:
        self.usage: Usage | None = None

    @contextmanager
    def measure(self) -> Iterator[None]:
        CHILD_PEAKS.take()
        children_before = resource.getrusage(resource.RUSAGE_CHILDREN)
        reset = reset_peak()
        cpu_before = _cpu_s(resource.RUSAGE_SELF) + _cpu_s(resource.RUSAGE_CHILDREN)
        started = time.monotonic()
        try:
            yield
        finally:
            wall_s = time.monotonic() - started
            cpu_s = _cpu_s(resource.RUSAGE_SELF) + _cpu_s(resource.RUSAGE_CHILDREN) - cpu_before
            children_kib = CHILD_PEAKS.take()
            children_after = resource.getrusage(resource.RUSAGE_CHILDREN)
            if children_after.ru_maxrss > children_before.ru_maxrss:  # reaped some other way
                children_kib = max(children_kib, children_after.ru_maxrss)
            peak = max(peak_kib(reset), children_kib)
            self.usage = Usage(wall_s, max(0.0, cpu_s), peak / _KIB_PER_MB)


@contextmanager
def wall_clock(found: list[Usage]) -> Iterator[None]:
    """Time a loop or thread handler's call; appends its :class:`Usage` to ``found``."""
    started = time.monotonic()
    try:
        yield
    finally:
        found.append(Usage(time.monotonic() - started))
