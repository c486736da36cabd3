"""Delivering callbacks: one timer for the earliest due delivery, re-armed by change events.

Nothing polls. A job's or workflow's final write sets a pending ``callback`` (``model.py``),
whose change event reaches every reactor: the one that wrote it (the delivery's ``owner``) arms
its timer for ``due_at``, the others for a grace period later (``REACTOR_LEASE_S``), so normally
one reactor sends and the others find nothing left when they look. When the timer fires, the
reactor takes every delivery due for it (``store.take``), sends each, records the attempt, and
looks up the earliest pending delivery again to re-arm. A look-up also follows startup, every
reopened stream and MongoDB coming back, so a delivery whose owner died is sent by another
reactor a grace period after it was due: at least once, whatever restarts.

A delivery never changes the status of the job or workflow it reports.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import anyio
import httpx
from pymongo.errors import PyMongoError

from reactor.callbacks import model
from reactor.callbacks.model import DeliveryState, Due
from reactor.callbacks.policy import Policy
from reactor.callbacks.store import KINDS, CallbackStore
from reactor.logging import get_logger

log = get_logger("reactor.callbacks")

RETRY_S = 1.0  # after MongoDB failed a look-up or a take
SENDS_AT_ONCE = 8
ERROR_MAX_CHARS = 300


class Deliverer:
    def __init__(self, store: CallbackStore, policy: Policy, *, owner: str, grace_s: float) -> None:
        self._store = store
        self._policy = policy
        self._owner = owner
        self._grace_s = grace_s
        self._due: datetime | None = None
        self._lookup = True
        self._changed = anyio.Event()
        self.sent = 0  # attempts made (tests, metrics)

    def offer(self, due: Due) -> None:
        """A delivery is pending: wake at its due time (a grace later if another owns it)."""
        when = due.due_at.timestamp()
        if due.owner != self._owner:
            when += self._grace_s
        self._arm(datetime.fromtimestamp(when, UTC))

    def forget(self) -> None:
        """The earliest delivery may be unknown: look it up (startup, catch-up)."""
        self._lookup = True
        self._wake()

    def _arm(self, when: datetime) -> None:
        if self._due is None or when < self._due:
            self._due = when
            self._wake()

    def _wake(self) -> None:
        self._changed.set()
        self._changed = anyio.Event()

    async def run(self) -> None:
        async with httpx.AsyncClient(
            timeout=self._policy.timeout_s, follow_redirects=False
        ) as http:
            while True:
                changed = self._changed
                if self._lookup and not await self._look_up():
                    await anyio.sleep(RETRY_S)
                    continue
                if self._due is not None and self._due <= self._store.now():
                    self._due = None
                    await self._deliver_due(http)
                    self._lookup = True
                    continue
                with anyio.move_on_after(self._seconds_left()):
                    await changed.wait()

    def _seconds_left(self) -> float:
        if self._due is None:
            return math.inf
        return max(0.0, (self._due - self._store.now()).total_seconds())

    async def _look_up(self) -> bool:
        self._lookup = False
        try:
            for kind in KINDS:
                own, anyone = await self._store.earliest(kind, self._owner)
                for due in (own, anyone):
                    if due is not None:
                        self.offer(due)
        except PyMongoError as exc:
            self._lookup = True
            log.warning("callback_lookup_failed", error=str(exc), retry_in_s=RETRY_S)
            return False
        return True

    async def _deliver_due(self, http: httpx.AsyncClient) -> None:
        limiter = anyio.Semaphore(SENDS_AT_ONCE)
        async with anyio.create_task_group() as tg:
            for kind in KINDS:
                while True:
                    try:
                        doc = await self._store.take(
                            kind, self._store.now(), self._owner, self._grace_s, self._attempt_s
                        )
                    except PyMongoError as exc:
                        log.warning("callback_take_failed", error=str(exc))
                        self._arm(self._store.now())
                        break
                    if doc is None:
                        break
                    await limiter.acquire()
                    tg.start_soon(self._send_one, http, kind, doc, limiter)

    @property
    def _attempt_s(self) -> float:
        return self._policy.timeout_s + self._grace_s

    async def _send_one(
        self, http: httpx.AsyncClient, kind: str, doc: Mapping[str, Any], limiter: anyio.Semaphore
    ) -> None:
        try:
            fields = await self._attempt(http, kind, doc)
            await self._store.record(kind, doc, fields)
        except PyMongoError as exc:  # the attempt's lease runs out; it is taken again then
            log.warning("callback_not_recorded", error=str(exc))
        except Exception:  # one delivery's trouble must not stop the reactor: taken again later
            log.exception("callback_crashed", delivery=str(doc.get("callback")))
        finally:
            limiter.release()

    async def _attempt(
        self, http: httpx.AsyncClient, kind: str, doc: Mapping[str, Any]
    ) -> dict[str, Any]:
        callback = doc[model.CALLBACK]
        url = doc.get(model.CALLBACK_URL)
        refusal = self._policy.refusal(url)
        if refusal is not None:
            log.warning("callback_refused", delivery=callback["id"], reason=refusal)
            return _fields(DeliveryState.REFUSED, None, refusal)
        body = await self._store.body(kind, doc)
        status, error = await self._post(http, str(url), callback["id"], kind, body)
        self.sent += 1
        if status is not None and 200 <= status < 300:
            log.info("callback_delivered", delivery=callback["id"], status=status,
                     attempts=callback["attempts"])  # fmt: skip
            return {
                **_fields(DeliveryState.DELIVERED, status, None),
                "delivered_at": self._store.now(),
            }
        return self._failed(callback, status, error)

    async def _post(
        self, http: httpx.AsyncClient, url: str, delivery_id: str, kind: str, body: bytes
    ) -> tuple[int | None, str | None]:
        headers = self._policy.headers(delivery_id, kind, int(time.time()), body)
        try:
            with anyio.fail_after(self._policy.timeout_s + 1):
                answer = await http.post(url, content=body, headers=headers)
        except (httpx.HTTPError, TimeoutError) as exc:
            return None, f"{type(exc).__name__}: {exc}"[:ERROR_MAX_CHARS]
        if 200 <= answer.status_code < 300:
            return answer.status_code, None
        return answer.status_code, f"HTTP {answer.status_code}: {answer.text[:200]}"

    def _failed(
        self, callback: Mapping[str, Any], status: int | None, error: str | None
    ) -> dict[str, Any]:
        attempts = int(callback["attempts"])
        if attempts >= self._policy.max_attempts:
            log.warning("callback_failed", delivery=callback["id"], attempts=attempts, error=error)
            return _fields(DeliveryState.FAILED, status, error)
        pause_s = self._policy.backoff(attempts)
        log.info(
            "callback_attempt_failed",
            delivery=callback["id"],
            attempts=attempts,
            status=status,
            error=error,
            retry_in_s=pause_s,
        )
        due = self._store.now() + timedelta(seconds=pause_s)
        self._arm(due)
        return {
            **_fields(DeliveryState.PENDING, status, error),
            "due_at": due,
            "owner": self._owner,
        }


def _fields(state: DeliveryState, status: int | None, error: str | None) -> dict[str, Any]:
    return {"state": state.value, "last_status": status, "last_error": error}
