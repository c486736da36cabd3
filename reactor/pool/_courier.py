"""Inside a worker: send the parent its replies and progress reports, never blocking a task.

A handler's ``ctx.progress(...)`` reaches the sink the worker installs for its task, from any
thread. The sink only stores the report, replacing one not yet sent (the latest wins), and wakes
a sender thread: a report never waits for the pipe, so a full pipe or a slow parent cannot stall
the task. The sender sends at most one report every ``PROGRESS_INTERVAL_S``. When the task
returns, its unsent report goes out just before its reply, under the same lock, so the parent
always has the latest value before the outcome. A report that comes later (from a thread the
task left running) is dropped, as is one for another job than the task's.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Set
from multiprocessing.connection import Connection
from typing import Final

from reactor.pool._protocol import REPLY, Progress, encode_progress
from reactor.progress import Sink

PROGRESS_INTERVAL_S: Final = 0.05  # at most 20 reports a second per worker reach the parent


class Courier:
    """The worker's sending side of its task pipe."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self._send_lock = threading.Lock()  # one message on the pipe at a time, in order
        self._state = threading.Condition(threading.Lock())  # never held while sending
        self._seq: int | None = None  # the task whose reports are taken
        self._job_ids: Set[str] = frozenset()  # that task's jobs (empty: any job)
        self._pending: Progress | None = None
        sender = threading.Thread(target=self._send_reports, name="reactor-pool-progress")
        sender.daemon = True
        sender.start()

    def send(self, message: bytes) -> None:
        with self._send_lock:
            self._conn.send_bytes(message)

    def open(self, seq: int, job_ids: Set[str]) -> Sink:
        """Take reports for task ``seq`` (about ``job_ids``, if any) through the sink returned."""
        with self._state:
            self._seq, self._job_ids, self._pending = seq, job_ids, None

        def sink(job_id: str, fraction: float, message: str | None) -> None:
            self._take(Progress(seq, fraction, message), job_id)

        return sink

    def reply(self, data: bytes) -> None:
        """Send the open task's latest unsent report, then its reply; later reports are dropped."""
        with self._send_lock:
            with self._state:
                pending, self._pending, self._seq = self._pending, None, None
            if pending is not None:
                self._conn.send_bytes(encode_progress(pending))
            self._conn.send_bytes(REPLY + data)

    def _take(self, report: Progress, job_id: str) -> None:
        with self._state:
            if report.seq == self._seq and (not self._job_ids or job_id in self._job_ids):
                self._pending = report
                self._state.notify()

    def _send_reports(self) -> None:
        while True:
            with self._state:
                self._state.wait_for(lambda: self._pending is not None)
            with self._send_lock:
                with self._state:  # reply() may have sent it meanwhile
                    pending, self._pending = self._pending, None
                if pending is not None:
                    try:
                        self._conn.send_bytes(encode_progress(pending))
                    except OSError:
                        return  # the parent is gone; the task's reply will find out too
            time.sleep(PROGRESS_INTERVAL_S)
