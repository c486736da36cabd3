"""Cancellations of jobs this reactor does not hold: claimed only to record the cancellation.

A cancel request for a job no live lease holds (queued, delayed, or abandoned by a dead reactor)
is recorded at once, even when every job slot is busy: the job is claimed with a targeted claim
(whatever its ``run_at`` or priority) and its cancelled result written without running it. At
most ``CANCEL_CLAIMS`` such claims run at once; requests wait in a bounded queue, and when that is
full the repair tier, which also finds cancel requests nobody has recorded, is raised instead.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
from anyio.abc import TaskGroup
from pymongo.errors import PyMongoError

from reactor.admission import Admission
from reactor.cancel import CancelBoard
from reactor.claims import Bell
from reactor.logging import get_logger
from reactor.model import CancelRequest, Job
from reactor.queries import Tier
from reactor.store import Store

log = get_logger("reactor.cancel_relay")

QUEUE_MAX = 1024


class CancelRelay:
    def __init__(
        self,
        store: Store,
        admission: Admission,
        board: CancelBoard,
        bell: Bell,
        run: Callable[[Job], Awaitable[None]],
    ) -> None:
        self._store, self._admission, self._board, self._bell = store, admission, board, bell
        self._run = run
        self._pending: deque[tuple[Any, CancelRequest]] = deque()
        self._offered = anyio.Event()

    def offer(self, doc_id: Any, request: CancelRequest) -> None:
        """A cancel request for a job this reactor does not hold (now)."""
        if len(self._pending) >= QUEUE_MAX:
            self._bell.ring(Tier.REPAIR)
            return
        self._pending.append((doc_id, request))
        self._offered.set()

    async def serve(self) -> None:
        """Record the offered cancellations (a task; never returns)."""
        async with anyio.create_task_group() as tg:
            while True:
                await self._offered.wait()
                self._offered = anyio.Event()
                while self._pending:
                    await self._start(tg, *self._pending.popleft())

    async def _start(self, tg: TaskGroup, doc_id: Any, request: CancelRequest) -> None:
        await self._admission.cancel_slots.acquire()
        tg.start_soon(self._one, doc_id, request)

    async def _one(self, doc_id: Any, request: CancelRequest) -> None:
        try:
            await self._record(doc_id, request)
        finally:
            self._admission.cancel_slots.release()

    async def _record(self, doc_id: Any, request: CancelRequest) -> None:
        try:
            job = await self._store.claim_for_cancel(doc_id)
        except PyMongoError as exc:  # the sweep's repair tier will find it
            log.warning("cancel_claim_failed", error=str(exc))
            self._bell.ring(Tier.REPAIR)
            return
        if job is not None:
            await self._run(job)
        elif (held := self._board.request(doc_id, request)) is not None:
            # This reactor claimed it a moment ago: it reached the board meanwhile.
            log.info("job_cancel_requested", job_id=held.key, command=held.command_name,
                     via=request.via)  # fmt: skip
