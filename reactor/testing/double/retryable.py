"""Retryable writes: each session's latest ``txnNumber`` and its outcome, so a retry is not re-run.

A driver retries a write that failed with a retryable error (or lost its connection) with the
same ``lsid`` and ``txnNumber``. As on MongoDB, the double answers such a retry with the reply it
recorded for the first execution instead of executing it again: a retried insert answers
``n: 1`` rather than a duplicate key, and a retried findAndModify claim returns the document it
claimed the first time instead of claiming a second one. A ``txnNumber`` below the session's
latest answers 225 ``TransactionTooOld``.
"""

from __future__ import annotations

from collections import OrderedDict

import bson

from reactor.testing.double.replies import CommandFailed, Doc

RETRYABLE_COMMANDS = frozenset(
    {"insert", "update", "delete", "findAndModify", "findandmodify", "bulkWrite"}
)
MAX_SESSIONS = 10_000

Key = tuple[bytes, int]


class RetryableWrites:
    """The recorded outcome of the latest retryable write of each session (LRU-bounded)."""

    def __init__(self, max_sessions: int = MAX_SESSIONS) -> None:
        self._sessions: OrderedDict[bytes, tuple[int, Doc | None]] = OrderedDict()
        self._max_sessions = max_sessions

    @staticmethod
    def key(name: str, body: Doc) -> Key | None:
        """``(session, txnNumber)`` of a retryable write command, None for any other command."""
        lsid, txn_number = body.get("lsid"), body.get("txnNumber")
        if name not in RETRYABLE_COMMANDS or not isinstance(lsid, dict):
            return None
        if not isinstance(txn_number, int) or isinstance(txn_number, bool):
            return None
        return bson.encode(lsid), int(txn_number)

    def recall(self, key: Key) -> Doc | None:
        """The reply recorded for ``key``; None if this write has not run on the session yet."""
        session, txn_number = key
        latest = self._sessions.get(session)
        if latest is None or latest[0] < txn_number:
            self._sessions[session] = (txn_number, None)
            self._trim()
            return None
        self._sessions.move_to_end(session)
        if latest[0] > txn_number:
            raise CommandFailed(
                225,
                f"Retryable write with txnNumber {txn_number} is prohibited on session because a "
                f"newer retryable write with txnNumber {latest[0]} has already started on it.",
            )
        return None if latest[1] is None else dict(latest[1])

    def remember(self, key: Key, reply: Doc) -> None:
        """Record the reply of a write that ran (only successful ones; replies are not mutated)."""
        if reply.get("ok") == 1:
            self._sessions[key[0]] = (key[1], dict(reply))

    def _trim(self) -> None:
        while len(self._sessions) > self._max_sessions:
            self._sessions.popitem(last=False)
