"""Stopping a running handler: on a cancel request, a lost or expired lease, or shutdown.

Each job this reactor runs has a :class:`Watch` on the :class:`CancelBoard` from its claim to
its recording. Whatever must stop the handler calls :meth:`Watch.stop` with a reason; the first
reason wins and cancels the scope the handler runs in (a loop handler is cancelled, a process
handler's worker is killed with its process group by the pool, a thread handler is abandoned).
A stop that comes before the handler started cancels the scope in advance, so it never starts.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import anyio

from reactor.model import CancelRequest, Job


class Reason(enum.Enum):
    """Why a handler was stopped, which decides what is recorded."""

    CANCEL = "cancel"  # asked for through the document: record a cancelled result
    LOST = "lost"  # another claim owns the job now (or the client replaced or deleted the
    # document): record nothing
    REQUEUED = "requeued"  # the client set the running job back to queued: give the lease up
    EXPIRED = "expired"  # the lease could not be renewed in time: hand the job back
    SHUTDOWN = "shutdown"  # the drain ran out: hand the job back, attempt not charged


class Watch:
    """One job's stop switch. ``stoppable`` is False for a thread handler: a re-queue then waits
    for it to return (it cannot be stopped, and a second execution must not start beside it)."""

    def __init__(self, job: Job, *, stoppable: bool = True) -> None:
        self.job = job
        self.stoppable = stoppable
        self.scope = anyio.CancelScope()
        self.reason: Reason | None = None
        self.request: CancelRequest | None = None

    def stop(self, reason: Reason, request: CancelRequest | None = None) -> bool:
        """Stop the handler for ``reason``; False if it was already stopped for another."""
        if self.reason is not None:
            return False
        self.reason, self.request = reason, request
        if reason is not Reason.REQUEUED or self.stoppable:
            self.scope.cancel()
        return True


class CancelBoard:
    """The watches of the jobs this reactor holds, by the job document's ``_id``."""

    def __init__(self) -> None:
        self._watches: dict[Any, Watch] = {}

    @contextmanager
    def watch(self, job: Job, *, stoppable: bool = True) -> Iterator[Watch]:
        watch = Watch(job, stoppable=stoppable)
        self._watches[job.doc_id] = watch
        try:
            yield watch
        finally:
            if self._watches.get(job.doc_id) is watch:
                del self._watches[job.doc_id]

    def holds(self, doc_id: Any) -> bool:
        return doc_id in self._watches

    def held(self, doc_id: Any) -> Job | None:
        watch = self._watches.get(doc_id)
        return watch.job if watch is not None else None

    def stop(self, doc_id: Any, reason: Reason) -> Job | None:
        """Stop the held job's handler for ``reason`` (the client took the job away)."""
        watch = self._watches.get(doc_id)
        if watch is None or not watch.stop(reason):
            return None
        return watch.job

    def request(self, doc_id: Any, request: CancelRequest) -> Job | None:
        """Deliver a cancel request; the job, if this reactor holds it."""
        watch = self._watches.get(doc_id)
        if watch is None:
            return None
        watch.stop(Reason.CANCEL, request)
        return watch.job

    def stop_all(self, reason: Reason) -> int:
        """Stop every held handler (shutdown); how many were stopped now."""
        return sum(watch.stop(reason) for watch in list(self._watches.values()))

    def __len__(self) -> int:
        return len(self._watches)
