"""What a task left running: the processes of the worker's group that outlive the task.

A worker is the leader of a process group of its own, with its watchdog in it; a handler's
subprocesses (tesseract, or a ``subprocess.Popen`` it never waited for) join that group. When a
task ends, whatever of the group is neither the worker nor its watchdog is work the job started
that would outlive the job, uncounted: it is killed with SIGKILL and reaped, and the count goes
back to the parent, which logs ``job_left_processes``. (A timeout or a cancel already kills the
whole group with the worker.) A process that left the group (``setsid``) is beyond reach.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Collection
from pathlib import Path

PROC = Path("/proc")
REAP_BOUND_S = 2.0  # a SIGKILLed process is gone within this, unless stuck in the kernel


def group_members(pgid: int) -> list[int]:
    """The live (not zombie) processes of process group ``pgid`` (Linux; empty elsewhere)."""
    members = []
    for entry in PROC.iterdir() if PROC.is_dir() else ():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue  # it exited meanwhile
        fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (comm) "
        state, group = fields[0], int(fields[2])
        if group == pgid and state != "Z":
            members.append(int(entry.name))
    return members


def end_leftovers(keep: Collection[int]) -> int:
    """Kill the processes of this process's group but ``keep`` (and itself); how many."""
    me = os.getpid()
    left = [pid for pid in group_members(os.getpgrp()) if pid != me and pid not in keep]
    for pid in left:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    reap(left)
    return len(left)


def reap(pids: Collection[int], bound_s: float = REAP_BOUND_S) -> None:
    """Collect those of ``pids`` that are this process's children once they have died (a killed
    process takes a moment); others (grandchildren) are their own parents' or init's to reap."""
    pending = set(pids)
    deadline = time.monotonic() + bound_s
    while pending and time.monotonic() < deadline:
        for pid in list(pending):
            try:
                done, _ = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                done = pid  # not a child of this process
            if done:
                pending.discard(pid)
        if pending:
            time.sleep(0.005)
