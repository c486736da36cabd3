"""What the change stream's news means for this reactor (``stream.Listener``).

- a job that can be claimed: raise its claim tiers and ring the claim loop's bell; a new job
  another reactor is preferred for is deferred instead, and forgotten when its claim is heard of
  (``rendezvous.py``);
- a cancel request: stop the job if this reactor holds it, else relay it (``cancel_relay.py``);
- a ``run_at``: offer it to the due timer;
- a step job's final status: its workflow moves on (``reactor.workflows.advancer``);
- a pending callback: the deliverer's timer (``reactor.callbacks.deliverer``);
- a (re)opened stream, or MongoDB back after an outage: the indexes are due again, the earliest
  due job and callback may be unknown, every tier is raised and every unfinished workflow is
  advanced (the catch-up);
- a job this reactor runs that the client replaced, deleted or set back to ``queued``: its
  execution is stopped at once (a replaced or deleted job's outcome is discarded; a re-queued
  job's lease is given up so that it runs again).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from reactor.callbacks.deliverer import Deliverer
from reactor.callbacks.model import Due
from reactor.cancel import CancelBoard, Reason
from reactor.cancel_relay import CancelRelay
from reactor.claims import Bell
from reactor.delays import DueTimer
from reactor.indexes import IndexKeeper
from reactor.logging import get_logger
from reactor.model import CancelRequest
from reactor.queries import CLAIM_ORDER, Tier
from reactor.rendezvous import Deferrals, Preference
from reactor.workflows.advancer import Advancer

log = get_logger("reactor.listener")

TAKEN_EVENTS = {
    "replace": "job_replaced_while_running",
    "delete": "job_deleted_while_running",
    "requeue": "job_requeued_while_running",
}


class StreamListener:
    def __init__(
        self,
        bell: Bell,
        board: CancelBoard,
        relay: CancelRelay,
        delays: DueTimer,
        indexes: IndexKeeper,
        preference: Preference,
        deferrals: Deferrals,
        workflows: Advancer,
        callbacks: Deliverer,
    ) -> None:
        self._bell, self._board, self._relay = bell, board, relay
        self._delays, self._indexes = delays, indexes
        self._preference, self._deferrals = preference, deferrals
        self._workflows, self._callbacks = workflows, callbacks

    def wake(self, *tiers: Tier) -> None:
        """One job, in one of ``tiers``, became claimable."""
        self._bell.ring(*tiers, count=1)

    def offered(self, doc_id: Any, *tiers: Tier) -> None:
        """A new job: ring at once if this reactor is its preferred one, else after the grace."""
        if self._preference.mine(doc_id) or not self._deferrals.defer(doc_id, tiers):
            self._bell.ring(*tiers, count=1)

    def claimed(self, doc_id: Any) -> None:
        """Another reactor claimed it."""
        self._deferrals.claimed(doc_id)

    def cancel(self, doc_id: Any, request: CancelRequest) -> None:
        held = self._board.request(doc_id, request)
        if held is None:
            self._relay.offer(doc_id, request)
            return
        log.info("job_cancel_requested", job_id=held.key, command=held.command_name,
                 via=request.via)  # fmt: skip

    def due(self, when: datetime) -> None:
        self._delays.offer(when)

    def step_final(self, workflow_id: str, owner: str) -> None:
        self._workflows.step_final(workflow_id, owner)

    def callback_due(self, due: Due) -> None:
        self._callbacks.offer(due)

    def taken(self, doc_id: Any, change: str, claim_id: Any) -> None:
        """The client ``change``d (replace, delete, requeue) a job; stop it if this reactor runs
        it under another claim than the document now names."""
        held = self._board.held(doc_id)
        if held is None or (change == "replace" and claim_id == held.claim_id):
            return
        reason = Reason.REQUEUED if change == "requeue" else Reason.LOST
        if self._board.stop(doc_id, reason) is not None:
            log.warning(TAKEN_EVENTS[change], job_id=held.key, command=held.command_name)

    def reopened(self) -> None:
        """Catch up: indexes again before claiming, then every tier; workflows and callbacks."""
        self._indexes.mark_due()
        self._delays.forget()
        self._deferrals.forget()
        self._bell.ring(*CLAIM_ORDER)
        self._workflows.catch_up()
        self._callbacks.forget()
