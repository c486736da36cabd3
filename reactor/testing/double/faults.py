"""Fault injection state: queued command failures and the change-stream stall gate.

Lives on the double's event loop; the public methods of :class:`MongoDouble` reach it through
``loop.call_soon_threadsafe``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Sequence
from dataclasses import dataclass

# Monitoring traffic is never failed unless named: a stray heartbeat would eat the failure.
_UNNAMED_EXEMPT = frozenset({"hello", "ismaster"})


@dataclass
class Failure:
    """An injected error: ``labels`` None means "the labels MongoDB would attach"."""

    remaining: int
    code: int
    labels: tuple[str, ...] | None
    commands: frozenset[str] | None
    message: str
    collections: frozenset[str] | None = None  # only commands on these collections

    def matches(self, command: str, collection: str | None = None) -> bool:
        if self.collections is not None and collection not in self.collections:
            return False
        if self.commands is None:
            return command.lower() not in _UNNAMED_EXEMPT
        return command in self.commands


class Faults:
    """What the next commands should suffer."""

    def __init__(self) -> None:
        self._failures: list[Failure] = []
        self._flowing = asyncio.Event()
        self._flowing.set()

    def fail_next(
        self,
        n: int,
        code: int,
        labels: Sequence[str] | None,
        commands: Collection[str] | None,
        message: str,
        collections: Collection[str] | None = None,
    ) -> None:
        names = None if commands is None else frozenset(commands)
        given = None if labels is None else tuple(labels)
        where = None if collections is None else frozenset(collections)
        self._failures.append(Failure(n, code, given, names, message, where))

    def take_failure(self, command: str, collection: str | None = None) -> Failure | None:
        """The injected failure for ``command`` (on ``collection``), if one is queued for it
        (counted as used)."""
        for failure in self._failures:
            if failure.remaining > 0 and failure.matches(command, collection):
                failure.remaining -= 1
                self._failures = [f for f in self._failures if f.remaining > 0]
                return failure
        return None

    @property
    def stalled(self) -> bool:
        return not self._flowing.is_set()

    def stall(self) -> None:
        self._flowing.clear()

    def resume(self) -> None:
        self._flowing.set()

    async def flowing(self) -> None:
        """Return once change streams are not stalled."""
        await self._flowing.wait()
