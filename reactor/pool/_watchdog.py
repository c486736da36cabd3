"""Each worker's watchdog: a small process that stops the worker, and all it started, in time.

The worker forks it first thing, into its own process group, so the watchdog is a separate,
single-threaded process: native code that holds the worker's GIL cannot keep it from acting.
It sits in ``poll()`` (no polling loop: it wakes for a record, for end-of-file, or at the running
task's deadline) and kills the whole process group, ``os.killpg(0, SIGKILL)`` (the worker, every
subprocess such as tesseract, and itself) when:

* **the reactor is gone.** Only the reactor holds the other end of the control socket, so when it
  dies, SIGKILL included, the kernel closes that end and the watchdog reads end-of-file;
* **the worker is gone.** It reads end-of-file on its ``finished`` socket: the subprocesses the
  worker left behind go with it;
* **the keep-alive deadline passed.** While a task runs under a keep-alive, the reactor forwards
  each extension as a ``DEADLINE`` record. When ``time.monotonic()`` reaches the deadline before
  the worker reports the task finished (the reactor is frozen, or could not renew the job's
  lease), the job may already run elsewhere, so this execution must end.

Before it kills the group it tells the reactor why (a ``STOPPING`` record), so that an expired
task fails as ``LeaseExpired`` and not as a crash, and so that the reactor can tell a watchdog
that died (no record) from one that did its job.

Backstops: the worker also asks the kernel for ``PR_SET_PDEATHSIG`` (it dies with the reactor
even without its watchdog, though its subprocesses would not), and the reactor enforces each
deadline itself a moment later, and kills a worker whose watchdog is gone.
"""

from __future__ import annotations

import contextlib
import ctypes
import math
import os
import select
import signal
import socket
import sys
import time
from typing import Final, NoReturn

from reactor.pool._protocol import DEADLINE, DEADLINE_PASSED, FINISHED, STOPPING, WORKER_GONE

PR_SET_PDEATHSIG: Final = 1
PR_SET_NAME: Final = 15
NAME: Final = b"pool-watchdog"  # what ps and top show for it (Linux)
ORPHANED_EXIT_CODE: Final = 70  # the reactor died before the worker could ask to die with it


def start_watchdog(control: socket.socket) -> tuple[socket.socket, int]:
    """Fork the watchdog (it takes ``control``); returns the socket to report finished tasks on,
    and the watchdog's pid.

    Call it before the worker starts any thread, after it has its own process group.
    """
    finished, watchdog_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    pid = os.fork()
    if pid == 0:
        try:
            _close_all_but({control.fileno(), watchdog_end.fileno()})
            _prctl(PR_SET_NAME, ctypes.c_char_p(NAME))
            Watchdog(control, watchdog_end).run()
        finally:
            kill_group()
    control.close()
    watchdog_end.close()
    return finished, pid


class Watchdog:
    """The watchdog process's loop over the control and ``finished`` sockets."""

    def __init__(self, control: socket.socket, finished: socket.socket) -> None:
        self._control = control
        self._finished = finished
        self._seq = 0  # the latest task a deadline was heard for
        self._deadline = math.inf  # that task's deadline on time.monotonic()
        self._done = 0  # the latest task the worker has finished

    def run(self) -> NoReturn:
        poller = select.poll()
        for sock in (self._control, self._finished):
            poller.register(sock, select.POLLIN)
        while True:
            wait_s = self._time_left()
            if wait_s is None or wait_s > 0:
                timeout_ms = None if wait_s is None else math.ceil(wait_s * 1000)
                if poller.poll(timeout_ms):
                    self._read()
            else:
                self._read()  # records that arrived in time count, even if read late
                if (left_s := self._time_left()) is not None and left_s <= 0:
                    self._stop(DEADLINE_PASSED, self._seq)

    def _time_left(self) -> float | None:
        """Seconds to the running task's deadline; ``None`` if no deadline is running."""
        if self._done >= self._seq or self._deadline == math.inf:
            return None
        return self._deadline - time.monotonic()

    def _read(self) -> None:
        """Take every record that has arrived; end-of-file on either socket ends the group."""
        records = _records(self._control)
        if records is None:
            kill_group()  # the reactor is gone: nobody to tell
        for data in records:
            if len(data) == DEADLINE.size:
                self._note(*DEADLINE.unpack(data))
        if (records := _records(self._finished)) is None:
            self._stop(WORKER_GONE, 0)
        for data in records:
            if len(data) == FINISHED.size:
                self._done = max(self._done, *FINISHED.unpack(data))

    def _stop(self, why: bytes, seq: int) -> NoReturn:
        with contextlib.suppress(OSError):  # a few bytes into an empty buffer: they fit
            self._control.send(STOPPING.pack(why, seq), socket.MSG_DONTWAIT)
        kill_group()

    def _note(self, seq: int, deadline: float) -> None:
        if seq > self._seq:
            self._seq, self._deadline = seq, deadline
        elif seq == self._seq:
            self._deadline = max(self._deadline, deadline)


def _records(sock: socket.socket) -> list[bytes] | None:
    """The records waiting on ``sock``; ``None`` at end-of-file (the peer is gone)."""
    records: list[bytes] = []
    while True:
        try:
            data = sock.recv(64, socket.MSG_DONTWAIT)
        except BlockingIOError:
            return records
        except OSError:
            data = b""
        if not data:
            return None
        records.append(data)


def kill_group() -> NoReturn:
    """SIGKILL this process's group: the worker, every subprocess it started, the watchdog."""
    try:
        os.killpg(0, signal.SIGKILL)
    finally:
        os._exit(ORPHANED_EXIT_CODE)  # not reached: the signal lands before the call returns


def die_with_parent(parent_pid: int) -> None:
    """Have the kernel SIGKILL this process when its parent exits (Linux; elsewhere a no-op).

    Strictly, when the parent *thread* that started this process exits: the pool starts workers
    from its event loop's thread, which lives as long as the pool may.
    """
    _prctl(PR_SET_PDEATHSIG, ctypes.c_ulong(signal.SIGKILL))
    if os.getppid() != parent_pid:  # it died before we asked
        os._exit(ORPHANED_EXIT_CODE)


def _prctl(option: int, value: ctypes.c_ulong | ctypes.c_char_p) -> None:
    """``prctl(option, value)`` on Linux; ``OSError`` if it fails; elsewhere nothing."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        unused = ctypes.c_ulong(0)
        if libc.prctl(ctypes.c_int(option), value, unused, unused, unused) != 0:
            number = ctypes.get_errno()
            raise OSError(number, f"prctl({option}): {os.strerror(number)}")


def _close_all_but(keep: set[int]) -> None:
    """Close every descriptor above stderr except ``keep`` (the watchdog needs no others)."""
    try:
        fds = [int(name) for name in os.listdir("/proc/self/fd")]
    except OSError:
        fds = list(range(3, os.sysconf("SC_OPEN_MAX")))
    for fd in fds:
        if fd > 2 and fd not in keep:
            with contextlib.suppress(OSError):
                os.close(fd)
