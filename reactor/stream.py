"""The change stream on ``jobs``: it says *when* to claim; the job documents say *what*.

Events never carry work. Each one only raises the claim tiers it concerns (``queries.Tier``) and
wakes the claim loop, so events coalesce into flags instead of piling up in a buffer, and a missed
event costs latency, never a job. An event asking to cancel a job goes to ``cancel``; one with a
``run_at`` re-arms the due timer. After every (re)opening of the stream -- startup, lost history
(code 286), an invalidate or drop, a reconnect -- ``reopened`` runs: indexes are ensured again
and every tier is raised (the catch-up). The stream is opened *before* that catch-up so nothing
slips between the two.

Only inserts, replacements, deletions and the updates a client makes to steer a job match (and the
reactor's own release of a re-queued job's lease), other reactors' claims (which tell a reactor
that a job it left to another was taken: ``rendezvous.py``), and the final statuses that others
wait on: a workflow's step job (``step_final``: its workflow moves on) and a job with a
``callback_url`` (a pending ``callback``: its delivery is due). This reactor's own claims,
heartbeats, progress and other final statuses do not, so they never wake it again. A
replacement, a deletion or a re-queue of a job this reactor runs takes the job away from its
execution (``Listener.taken``).

:class:`JobStream` watches another collection when given one, with that collection's pipeline
and meaning (``reactor.workflows.stream`` watches ``workflows``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, Protocol

import anyio
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import OperationFailure, PyMongoError

from reactor import model
from reactor.callbacks.model import CALLBACK, DeliveryState, Due, due_of
from reactor.logging import get_logger
from reactor.model import CancelRequest, Status
from reactor.queries import QUEUED_TIERS, Tier
from reactor.store import STREAM_STATE_ID, Store
from reactor.workflows.model import STEP_FINAL, step_final_of

log = get_logger("reactor.stream")

HISTORY_LOST_CODES = frozenset({286, 280, 260})  # history lost, fatal, invalid resume token
_UPDATED = "updateDescription.updatedFields"
_ENDS = ["drop", "dropDatabase", "rename", "invalidate"]
PENDING = DeliveryState.PENDING.value
# The only fields an event keeps (of the document, or of an update's fields): an event stays a
# few hundred bytes whatever the job holds, far from the 16 MB a change event may not exceed (so
# no $changeStreamSplitLargeEvent is needed), and the stream carries no job's arguments. A step
# job's final marker and a job's pending callback are small documents of their own.
_READ = (
    model.STATUS,
    model.PRIORITY,
    model.RUN_AT,
    model.CANCEL_REQUESTED,
    model.CANCEL_REQUESTED_AT,
    model.CLAIM_ID,
    model.LEASE_OWNER,
    model.LEASE_RELEASED_AT,
    STEP_FINAL,
    CALLBACK,
)

PIPELINE: list[dict[str, Any]] = [
    {
        "$match": {
            "$or": [
                {"operationType": {"$in": ["insert", "replace"]}},
                {"operationType": "update", f"{_UPDATED}.{model.STATUS}": Status.QUEUED.value},
                {"operationType": "update", f"{_UPDATED}.{model.CANCEL_REQUESTED}": True},
                {
                    "operationType": "update",
                    f"{_UPDATED}.{model.STATUS}": Status.CANCELLED.value,
                    f"{_UPDATED}.{model.CANCELLED_AT}": {"$exists": False},
                },
                {"operationType": "update", f"{_UPDATED}.{model.PRIORITY}": {"$exists": True}},
                {"operationType": "update", f"{_UPDATED}.{model.RUN_AT}": {"$exists": True}},
                {
                    "operationType": "update",
                    f"{_UPDATED}.{model.LEASE_RELEASED_AT}": {"$exists": True},
                },
                {"operationType": "update", f"{_UPDATED}.{STEP_FINAL}": {"$exists": True}},
                {"operationType": "update", f"{_UPDATED}.{CALLBACK}.state": PENDING},
                {"operationType": {"$in": ["delete", *_ENDS]}},
            ]
        }
    },
    {
        "$project": {
            "operationType": 1,
            "documentKey": 1,
            "wallTime": 1,
            "updateDescription.removedFields": 1,
            **{f"{_UPDATED}.{name}": 1 for name in _READ},
            **{f"fullDocument.{name}": 1 for name in _READ},
        }
    },
]


def jobs_pipeline(owner: str) -> list[dict[str, Any]]:
    """What this reactor (``owner``) watches: the steering and the other reactors' claims."""
    others_claims = {
        "operationType": "update",
        f"{_UPDATED}.{model.CLAIM_ID}": {"$exists": True},
        f"{_UPDATED}.{model.LEASE_OWNER}": {"$ne": owner},
    }
    match = PIPELINE[0]["$match"]
    return [{"$match": {"$or": [*match["$or"], others_claims]}}, *PIPELINE[1:]]


class Listener(Protocol):
    """What the stream tells the service."""

    def wake(self, *tiers: Tier) -> None: ...
    def cancel(self, doc_id: Any, request: CancelRequest) -> None: ...
    def due(self, when: datetime) -> None: ...
    def reopened(self) -> None: ...
    def taken(self, doc_id: Any, change: str, claim_id: Any) -> None: ...
    def step_final(self, workflow_id: str, owner: str) -> None: ...
    def callback_due(self, due: Due) -> None: ...
    def offered(self, doc_id: Any, *tiers: Tier) -> None: ...
    def claimed(self, doc_id: Any) -> None: ...


class Reopens(Protocol):
    """What every stream's listener is told: the stream was (re)opened."""

    def reopened(self) -> None: ...


def tiers_for(fields: Mapping[str, Any]) -> tuple[Tier, ...]:
    """The claim tiers a job with these fields can be claimed by (pure)."""
    status = fields.get(model.STATUS)
    if status not in (None, Status.QUEUED.value):
        return (Tier.REPAIR,)
    priority = fields.get(model.PRIORITY)
    if priority is None:
        return (Tier.DEFAULT,)
    if not model.is_priority(priority):
        return (Tier.REPAIR,)
    if priority > 0:
        return (Tier.POSITIVE,)
    return (Tier.NEGATIVE,) if priority < 0 else (Tier.DEFAULT,)


def dispatch(change: Mapping[str, Any], listener: Listener) -> None:
    """Tell ``listener`` what one change event means (pure apart from the calls)."""
    kind = change.get("operationType")
    if kind in _ENDS:
        return  # the stream ends after these; reopening catches up
    doc_id = (change.get("documentKey") or {}).get(model.ID)
    if kind == "delete":
        listener.taken(doc_id, "delete", None)
        return
    updated = (change.get("updateDescription") or {}).get("updatedFields") or {}
    if kind == "update" and model.CLAIM_ID in updated:
        listener.claimed(doc_id)  # another reactor's claim (the pipeline leaves out our own)
        return
    wall = change.get("wallTime")
    wall_time = wall if isinstance(wall, datetime) else None
    fields = change.get("fullDocument") if kind in ("insert", "replace") else None
    if fields is None:
        fields = (change.get("updateDescription") or {}).get("updatedFields") or {}
        if _followed(fields, listener):
            return
    _take_away(kind, change, fields, doc_id, listener)
    request = model.cancel_request(fields)
    if request is not None:
        at = request.requested_at or wall_time
        listener.cancel(doc_id, CancelRequest(request.via, at))
    run_at = fields.get(model.RUN_AT)
    if isinstance(run_at, datetime):
        listener.due(run_at)
    if (
        kind == "update"
        and model.PRIORITY not in fields
        and (model.STATUS in fields or model.LEASE_RELEASED_AT in fields)
    ):
        listener.wake(*QUEUED_TIERS)  # re-queued or released: its priority is not in the event
    elif request is None and kind == "update":
        listener.wake(*tiers_for(fields))
    elif request is None:
        listener.offered(doc_id, *tiers_for(fields))  # a new job: its preferred reactor rings


def _followed(fields: Mapping[str, Any], listener: Listener) -> bool:
    """Tell the listener of a final status others wait on; whether this update was one."""
    marker = step_final_of(fields)
    if marker is not None:
        listener.step_final(*marker)
    due = due_of(fields.get(CALLBACK))
    if due is not None:
        listener.callback_due(due)
    return marker is not None or due is not None


Dispatch = Callable[[Mapping[str, Any], Any], None]


def _take_away(
    kind: Any, change: Mapping[str, Any], fields: Mapping[str, Any], doc_id: Any, listener: Listener
) -> None:
    """A client's replacement of a job, or its ``status: queued`` on one that runs (not the
    reactor's own re-queue, which drops the lease in the same write), takes it away."""
    if kind == "replace":
        listener.taken(doc_id, "replace", fields.get(model.CLAIM_ID))
        return
    removed = (change.get("updateDescription") or {}).get("removedFields") or ()
    queued = fields.get(model.STATUS) == Status.QUEUED.value
    if kind == "update" and queued and model.LEASE_OWNER not in removed:
        listener.taken(doc_id, "requeue", None)


class JobStream:
    """Watch ``jobs`` and tell a :class:`Listener`; never returns unless cancelled."""

    def __init__(
        self,
        store: Store,
        listener: Reopens,
        *,
        max_await_ms: int = 1000,
        token_save_s: float = 1.0,
        retry_s: float = 1.0,
        on_lag: Any = None,
        collection: AsyncCollection[dict[str, Any]] | None = None,
        pipeline: list[dict[str, Any]] | None = None,
        meaning: Dispatch = dispatch,
        token_key: str | None = STREAM_STATE_ID,
        full_document: str | None = None,
    ) -> None:
        """``collection`` (default: jobs) is watched with ``pipeline`` and each event told to
        ``listener`` by ``meaning``; the resume token is kept under ``token_key`` in
        ``reactor_state`` (``None``: not kept, the catch-up alone covers a restart)."""
        self._store = store
        self._listener = listener
        self._collection = collection
        self._pipeline = jobs_pipeline(store.owner) if pipeline is None else pipeline
        self._meaning = meaning
        self._token_key = token_key
        self._full_document = full_document
        self._on_lag = on_lag
        self._max_await_ms = max_await_ms
        self._token_save_s = token_save_s
        self._retry_s = retry_s
        self.last_progress = time.monotonic()  # an event or an advanced resume token
        self.last_turn = time.monotonic()  # the loop's last completed step, for liveness
        self.events = 0
        self.token: dict[str, Any] | None = None
        self._saved: dict[str, Any] | None = None
        self._saved_at = 0.0

    def seconds_since_progress(self) -> float:
        return time.monotonic() - self.last_progress

    @property
    def _call_timeout_s(self) -> float:
        return self._store.timeout_s + self._max_await_ms / 1000

    async def run(self) -> None:
        """Watch forever, reopening after errors."""
        while True:
            try:
                self.token = await self._load_token()
                break
            except PyMongoError as exc:
                await self._failed(exc)
        self._saved = self.token
        try:
            while True:
                await self._watch_once_guarded()
        finally:
            with anyio.CancelScope(shield=True), anyio.move_on_after(5):
                await self._save_token(force=True)

    async def _watch_once_guarded(self) -> None:
        try:
            await self._watch_once()
        except OperationFailure as exc:
            if exc.code not in HISTORY_LOST_CODES:
                await self._failed(exc)
                return
            log.warning("stream_history_lost", code=exc.code, error=str(exc))
            self.token = None
            await self._save_token(force=True)
        except PyMongoError as exc:
            await self._failed(exc)

    async def _failed(self, exc: PyMongoError) -> None:
        self.last_turn = time.monotonic()
        log.warning("stream_error", error=str(exc), error_type=type(exc).__name__,
                    retry_in_s=self._retry_s)  # fmt: skip
        await anyio.sleep(self._retry_s)

    async def _watch_once(self) -> None:
        options: dict[str, Any] = {"max_await_time_ms": self._max_await_ms}
        if self.token is not None:
            options["start_after"] = self.token
        if self._full_document is not None:
            options["full_document"] = self._full_document
        calls, timeout_s = self._store.calls, self._call_timeout_s
        stream = await calls.run(
            "stream_open", timeout_s, self._watched().watch(self._pipeline, **options)
        )
        try:
            log.info("stream_opened", resumed=self.token is not None)
            self._progress(stream.resume_token)
            self._listener.reopened()  # catch up with whatever happened while not watching
            while stream.alive:
                change = await calls.run("stream_next", timeout_s, stream.try_next())
                self.last_turn = time.monotonic()
                self._progress(stream.resume_token)
                if change is not None:
                    self._on_change(change)
                await self._save_token()
        finally:
            with calls.guard("stream_close", self._store.timeout_s):
                await stream.close()  # (in finally: a cancellation is on its way anyway)
        log.info("stream_closed")

    def _on_change(self, change: Mapping[str, Any]) -> None:
        self.events += 1
        if change.get("operationType") == "invalidate":
            log.warning("stream_invalidated")
            token = change.get("_id")
            self.token = dict(token) if isinstance(token, Mapping) else None
            return
        wall_time = change.get("wallTime")
        if self._on_lag is not None and isinstance(wall_time, datetime):
            self._on_lag(max(0.0, (self._store.now() - wall_time).total_seconds()))
        self._meaning(change, self._listener)

    def _progress(self, token: Any) -> None:
        if isinstance(token, dict) and token != self.token:
            self.token = token
            self.last_progress = time.monotonic()

    def _watched(self) -> AsyncCollection[dict[str, Any]]:
        return self._store.jobs if self._collection is None else self._collection

    async def _load_token(self) -> dict[str, Any] | None:
        if self._token_key is None:
            return None
        return await self._store.load_resume_token(self._token_key)

    async def _save_token(self, *, force: bool = False) -> None:
        due = time.monotonic() - self._saved_at >= self._token_save_s
        if self._token_key is None or self.token == self._saved or not (force or due):
            return
        try:
            await self._store.save_resume_token(self.token, self._token_key)
        except PyMongoError as exc:
            log.warning("resume_token_save_failed", error=str(exc))
            return
        self._saved, self._saved_at = self.token, time.monotonic()
