"""The reactor's indexes: ensured at startup, and again whenever MongoDB may have lost them.

After every (re)opening of the change stream and every reconnect, MongoDB may be a new, empty
server (a restart without data, a failover to a member that lost them). The indexes are then due:
the claim loop ensures them before its next claim, and :meth:`IndexKeeper.keep` ensures them at
once in the background, without waiting for a claim (the claim loop may be full).
"""

from __future__ import annotations

import anyio
from pymongo.errors import PyMongoError

from reactor import adopt
from reactor.logging import get_logger
from reactor.store import Store

log = get_logger("reactor.indexes")


class IndexKeeper:
    def __init__(self, store: Store) -> None:
        self._store = store
        self._due = False
        self._wanted = anyio.Event()

    def mark_due(self) -> None:
        """The indexes may be gone: ensure them before the next claim, and now in the background."""
        self._due = True
        self._wanted.set()

    async def ensure_if_due(self) -> None:
        """Ensure them if due (raises ``PyMongoError`` when MongoDB does not answer)."""
        if self._due:
            await adopt.ensure_indexes(self._store)
            self._due = False

    async def keep(self) -> None:
        """Ensure them whenever they become due (a task; never returns)."""
        while True:
            await self._wanted.wait()
            self._wanted = anyio.Event()
            try:
                await self.ensure_if_due()
            except PyMongoError as exc:  # the claim loop tries again before its next claim
                log.warning("ensure_indexes_failed", error=str(exc))
