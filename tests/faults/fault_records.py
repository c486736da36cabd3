"""Execution records: what every fault handler writes while it runs, and the overlap rule.

Each execution of a handler appends JSON lines to its own file,
``$FAULT_RECORDS/<job_id>/<token>.jsonl``: a ``start`` line (job_id, attempt, run, pid, ppid,
kind, token), a ``tick`` line every :data:`TICK_S` while it runs, optional ``child`` lines
(pids of processes it started), and an ``end`` line when it returns, or a ``stop`` line when
it is cancelled. Every line carries ``t``, :func:`now`: CLOCK_MONOTONIC on Linux, one
clock for every process on the machine, so records of different processes compare.

The overlap rule. An execution is known to be running at each instant it wrote a line. Its
*known span* is ``[start, last]``, ``last`` being the time of its latest line. Two executions
of one job *overlap* when ``max(start_a, start_b) < min(last_a, last_b)``: at the later start
both had begun and neither had written its last line, so both were running. The known span is
a lower bound of the real one (an execution killed between ticks ran up to one tick longer),
so a reported overlap is always real, and an overlap shorter than one tick can be missed.

One exception, for a reactor frozen by SIGSTOP: its loop and thread handlers are frozen with it
and, after SIGCONT, run until it notices that its leases are gone, which it cannot do before
they resume. Lines such an execution writes within a :class:`Grace` window after SIGCONT are
left out of its span; anything it writes later counts.
"""

from __future__ import annotations

import ctypes
import json
import os
import time
import uuid
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

RECORDS_ENV = "FAULT_RECORDS"
TICK_S = 0.1
IN_PROCESS_KINDS = frozenset({"loop", "thread"})  # handlers that run inside the reactor process


_CLOCK_GETTIME = {"x86_64": 228, "aarch64": 113}  # the syscall's number on each machine


def now() -> float:
    """CLOCK_MONOTONIC read with the system call itself, not through libc: a reactor whose clocks
    libfaketime skews (the clock-skew scenarios) still writes times every process agrees on."""
    number = _CLOCK_GETTIME.get(os.uname().machine)
    if number is None:
        return time.monotonic()
    spec = _Timespec()
    if _LIBC.syscall(number, time.CLOCK_MONOTONIC, ctypes.byref(spec)) != 0:
        return time.monotonic()
    return spec.tv_sec + spec.tv_nsec / 1e9


class _Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


_LIBC = ctypes.CDLL(None, use_errno=True)


class Recorder:
    """The record file of one execution (used by the handlers in ``fault_handlers.py``)."""

    def __init__(self, ctx: Any, kind: str) -> None:
        self.token = uuid.uuid4().hex
        self.job_id = str(ctx.job_id)
        self.attempt = int(ctx.attempt)
        folder = Path(os.environ[RECORDS_ENV]) / self.job_id
        folder.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(folder / f"{self.token}.jsonl", os.O_WRONLY | os.O_CREAT | os.O_APPEND)
        self.started = now()
        self.write(
            "start",
            job_id=self.job_id,
            attempt=self.attempt,
            run=getattr(ctx, "run", None),
            fence=getattr(ctx, "fence", None),
            pid=os.getpid(),
            ppid=os.getppid(),
            kind=kind,
            token=self.token,
        )

    def write(self, event: str, **fields: Any) -> None:
        line = json.dumps({"ev": event, "t": now(), **fields}) + "\n"
        os.write(self._fd, line.encode())  # one O_APPEND write per line: lines never interleave

    def tick(self) -> None:
        self.write("tick")

    def end(self) -> dict[str, Any]:
        """Write the end line, close, and return the handler's result value."""
        self.write("end")
        os.close(self._fd)
        return {
            "job_id": self.job_id,
            "attempt": self.attempt,
            "pid": os.getpid(),
            "token": self.token,
        }

    def stop(self, why: str) -> None:
        self.write("stop", why=why)
        os.close(self._fd)


@dataclass(frozen=True)
class Grace:
    """Lines of in-process executions of ``pid`` written in ``[start, end]`` do not count."""

    pid: int
    start: float
    end: float


@dataclass
class Execution:
    """One execution of a handler, read back from its record file."""

    job_id: str
    token: str
    attempt: int
    run: int | None
    pid: int
    ppid: int
    kind: str
    start: float
    times: list[float]
    ended: bool
    stopped: bool
    children: list[int] = field(default_factory=list)
    fence: int | None = None  # the claim that ran it: one claim never executes twice

    @property
    def host_pid(self) -> int:
        """The reactor process it ran under (its own pid for loop/thread, the parent for CPU)."""
        return self.pid if self.kind in IN_PROCESS_KINDS else self.ppid

    def last(self, graces: Iterable[Grace] = ()) -> float:
        """The time of its latest line that counts."""
        excused = [g for g in graces if self.kind in IN_PROCESS_KINDS and g.pid == self.pid]
        counted = [t for t in self.times if not any(g.start <= t <= g.end for g in excused)]
        return max(counted, default=self.start)


@dataclass(frozen=True)
class Overlap:
    """Two executions of one job that were running at once, for ``seconds``."""

    job_id: str
    first: Execution
    second: Execution
    seconds: float

    def describe(self) -> str:
        a, b = self.first, self.second
        return (
            f"{self.job_id}: attempt {a.attempt} ({a.kind} in pid {a.pid}, reactor "
            f"{a.host_pid}) and attempt {b.attempt} (pid {b.pid}, reactor {b.host_pid}) ran "
            f"together for {self.seconds:.3f} s"
        )


def load(root: Path) -> dict[str, list[Execution]]:
    """Every execution under ``root``, by job_id, oldest first."""
    found: dict[str, list[Execution]] = defaultdict(list)
    for path in sorted(root.glob("*/*.jsonl")):
        execution = _read(path)
        if execution is not None:
            found[execution.job_id].append(execution)
    for executions in found.values():
        executions.sort(key=lambda e: e.start)
    return dict(found)


def overlaps(executions: dict[str, list[Execution]], graces: Iterable[Grace] = ()) -> list[Overlap]:
    """Every pair of executions of one job that overlap by the rule above."""
    graces = list(graces)
    found = []
    for job_id, runs in executions.items():
        for i, a in enumerate(runs):
            for b in runs[i + 1 :]:
                seconds = min(a.last(graces), b.last(graces)) - max(a.start, b.start)
                if seconds > 0:
                    found.append(Overlap(job_id, a, b, seconds))
    return found


def _read(path: Path) -> Execution | None:
    lines = []
    for text in path.read_text().splitlines():
        try:
            lines.append(json.loads(text))
        except json.JSONDecodeError:  # a line cut short by SIGKILL
            continue
    if not lines or lines[0].get("ev") != "start":
        return None  # a file caught between open() and its first write
    head = lines[0]
    return Execution(
        job_id=head["job_id"],
        token=head["token"],
        attempt=head["attempt"],
        run=head.get("run"),
        pid=head["pid"],
        ppid=head["ppid"],
        kind=head["kind"],
        start=head["t"],
        times=[line["t"] for line in lines],
        ended=any(line["ev"] == "end" for line in lines),
        stopped=any(line["ev"] == "stop" for line in lines),
        children=[line["pid"] for line in lines if line["ev"] == "child"],
        fence=head.get("fence"),
    )
