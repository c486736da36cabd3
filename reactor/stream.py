"""The change stream on ``jobs``: it says *when* to claim; the job documents say *what*.

Events never carry work. Each one only wakes the claim loop, which takes the oldest claimable
job from the collection, so events coalesce into a flag instead of piling up in a buffer, and a
missed event costs latency, never a job. A catch-up wake follows every (re)opening of the stream:
at startup, after lost history (code 286), after an invalidate event and after a reconnect. The
stream is opened *before* that catch-up so nothing slips between the two.

Only inserts and updates that put a job back to ``queued`` match; the reactor's own claims,
heartbeats and final statuses do not, so they never wake it again.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import anyio
from pymongo.errors import OperationFailure, PyMongoError

from reactor import model
from reactor.logging import get_logger
from reactor.model import Status
from reactor.store import Store

log = get_logger("reactor.stream")

HISTORY_LOST_CODES = frozenset({286, 280, 260})  # history lost, fatal, invalid resume token

PIPELINE: list[dict[str, Any]] = [
    {
        "$match": {
            "$or": [
                {"operationType": "insert"},
                {
                    "operationType": "update",
                    f"updateDescription.updatedFields.{model.STATUS}": Status.QUEUED.value,
                },
                {"operationType": "replace"},
            ]
        }
    },
    {"$project": {"operationType": 1, "documentKey": 1, "wallTime": 1}},
]


class JobStream:
    """Watch ``jobs``, call ``wake`` for each relevant event and after every catch-up point."""

    def __init__(
        self,
        store: Store,
        wake: Callable[[], None],
        *,
        max_await_ms: int = 1000,
        token_save_s: float = 1.0,
        retry_s: float = 1.0,
        on_lag: Callable[[float], None] | None = None,
    ) -> None:
        self._store = store
        self._wake = wake
        self._on_lag = on_lag
        self._max_await_ms = max_await_ms
        self._token_save_s = token_save_s
        self._retry_s = retry_s
        self.last_progress = time.monotonic()  # an event or an advanced resume token
        self.events = 0
        self.token: dict[str, Any] | None = None
        self._saved: dict[str, Any] | None = None
        self._saved_at = 0.0

    def seconds_since_progress(self) -> float:
        return time.monotonic() - self.last_progress

    async def run(self) -> None:
        """Watch forever, reopening after errors; never returns unless cancelled."""
        self.token = await self._store.load_resume_token()
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
                raise
            log.warning("stream_history_lost", code=exc.code, error=str(exc))
            self.token = None
            await self._save_token(force=True)
        except PyMongoError as exc:
            log.warning(
                "stream_error",
                error=str(exc),
                error_type=type(exc).__name__,
                retry_in_s=self._retry_s,
            )
            await anyio.sleep(self._retry_s)

    async def _watch_once(self) -> None:
        options: dict[str, Any] = {"max_await_time_ms": self._max_await_ms}
        if self.token is not None:
            options["start_after"] = self.token
        async with await self._store.jobs.watch(PIPELINE, **options) as stream:
            log.info("stream_opened", resumed=self.token is not None)
            self._progress(stream.resume_token)
            self._wake()  # catch up with whatever happened while we were not watching
            while stream.alive:
                change = await stream.try_next()
                self._progress(stream.resume_token)
                if change is not None:
                    self._on_change(change)
                await self._save_token()
        log.info("stream_closed")

    def _on_change(self, change: dict[str, Any]) -> None:
        self.events += 1
        if change.get("operationType") == "invalidate":
            log.warning("stream_invalidated")
            self.token = change.get("_id")  # start_after an invalidate token reopens
            return
        wall_time = change.get("wallTime")
        if self._on_lag is not None and isinstance(wall_time, datetime):
            self._on_lag(max(0.0, (datetime.now(UTC) - wall_time).total_seconds()))
        self._wake()

    def _progress(self, token: Any) -> None:
        if isinstance(token, dict) and token != self.token:
            self.token = token
            self.last_progress = time.monotonic()

    async def _save_token(self, *, force: bool = False) -> None:
        due = time.monotonic() - self._saved_at >= self._token_save_s
        if self.token == self._saved or not (force or due):
            return
        try:
            await self._store.save_resume_token(self.token)
        except PyMongoError as exc:
            log.warning("resume_token_save_failed", error=str(exc))
            return
        self._saved, self._saved_at = self.token, time.monotonic()
