"""One wake-up per job across replicas: each new job has a preferred reactor, the others wait.

Every reactor watching ``jobs`` hears of every insert. Racing for each of them costs one claim
per reactor per job on the primary, all but one of them empty: at fifty replicas, fifty
``findAndModify`` per job. So each job (by its ``_id``) prefers one reactor of the live fleet,
chosen by rendezvous hashing (the highest ``hash(owner, _id)``; every reactor computes the same
choice from the same fleet, and a reactor joining or leaving moves only its own share):

- the preferred reactor claims at once;
- the others defer: after the grace (``REACTOR_CLAIM_GRACE_S``) they ring their claim loop for
  the job, unless its claim reached them first (the stream carries the other reactors' claims,
  the updates that set a ``claim_id``, for exactly this). So a job whose preferred reactor is
  dead, busy or cut off is claimed by another within the grace, and idle replicas cost no claims.

The fleet is what the heartbeats in ``reactor_workers`` say (``fleet.py``), read again with every
heartbeat: reactors seen within the TTL with a free slot at their last beat. Until a reactor knows
its fleet, when it is alone, when the grace is 0, or when more than :data:`MAX_DEFERRED` jobs wait
on others (a backlog: claims are not wasted there anyway), every job is its own.

The preference only decides who *rings*; a claim still takes the first claimable job of its
tier, whichever that is, so nothing about the order or the guarantees of claiming changes.
"""

from __future__ import annotations

import hashlib
import heapq
import math
import time
from collections.abc import Callable, Iterable
from typing import Any

import anyio

from reactor.logging import get_logger
from reactor.queries import Tier

log = get_logger("reactor.rendezvous")

MAX_DEFERRED = 10_000  # deferred jobs kept at most (beyond: rung at once)


class Preference:
    """Which jobs this reactor claims at once: those the fleet's rendezvous gives it."""

    def __init__(self, owner: str) -> None:
        self.owner = owner
        self._others: tuple[str, ...] = ()  # live members with room, other than this one

    def update(self, members: Iterable[str]) -> None:
        """The live fleet with room (owners), as the latest heartbeat read it."""
        others = tuple(sorted(m for m in set(members) if m != self.owner))
        if others != self._others:
            log.debug("claim_preference_fleet", others=len(others))
        self._others = others

    @property
    def alone(self) -> bool:
        return not self._others

    def mine(self, doc_id: Any) -> bool:
        """Whether this reactor is the job's preferred claimer."""
        if not self._others:
            return True
        key = _key(doc_id)
        mine = _score(self.owner, key)
        return all(mine > _score(other, key) for other in self._others)


def _key(doc_id: Any) -> bytes:
    """A job's ``_id`` as the same bytes in every reactor (any BSON type, documents too)."""
    return repr(doc_id).encode()


def _score(owner: str, key: bytes) -> int:
    digest = hashlib.blake2b(owner.encode() + b"\0" + key, digest_size=8).digest()
    return int.from_bytes(digest, "big")


class Deferrals:
    """Jobs another reactor is preferred for: rung after the grace unless claimed meanwhile."""

    def __init__(
        self,
        ring: Callable[..., None],
        grace_s: float,
        now: Callable[[], float] = time.monotonic,
    ) -> None:
        self._ring = ring  # Bell.ring(*tiers, count=1)
        self._grace_s = grace_s
        self._now = now
        self._due: list[tuple[float, int, bytes]] = []  # (when, order, key)
        self._tiers: dict[bytes, tuple[int, tuple[Tier, ...]]] = {}  # key: (order, tiers)
        self._order = 0
        self._changed = anyio.Event()

    def __len__(self) -> int:
        return len(self._tiers)

    def defer(self, doc_id: Any, tiers: tuple[Tier, ...]) -> bool:
        """Ring for ``doc_id``'s ``tiers`` after the grace, unless it is claimed first; False
        when not deferred (no grace, or too many waiting): the caller rings at once."""
        if self._grace_s <= 0 or len(self._tiers) >= MAX_DEFERRED:
            return False
        key = _key(doc_id)
        if key in self._tiers:
            return True
        self._order += 1
        self._tiers[key] = (self._order, tiers)
        heapq.heappush(self._due, (self._now() + self._grace_s, self._order, key))
        if len(self._due) == 1:
            self._changed.set()  # (later entries fall due after the first: no need to wake)
        return True

    def claimed(self, doc_id: Any) -> None:
        """Someone claimed it: nothing to ring."""
        self._tiers.pop(_key(doc_id), None)

    def forget(self) -> None:
        """A catch-up rings every tier anyway (a reopened stream)."""
        self._tiers.clear()
        self._due.clear()

    async def run(self) -> None:
        """Ring what falls due (a task; never returns)."""
        while True:
            with anyio.move_on_after(self._wait_s()):
                await self._changed.wait()
            self._changed = anyio.Event()
            self._ring_due()

    def _wait_s(self) -> float:
        while self._due and not self._pending(self._due[0]):
            heapq.heappop(self._due)  # claimed meanwhile
        return max(0.0, self._due[0][0] - self._now()) if self._due else math.inf

    def _ring_due(self) -> None:
        now = self._now()
        while self._due and self._due[0][0] <= now:
            entry = heapq.heappop(self._due)
            if self._pending(entry):
                _, tiers = self._tiers.pop(entry[2])
                self._ring(*tiers, count=1)

    def _pending(self, entry: tuple[float, int, bytes]) -> bool:
        held = self._tiers.get(entry[2])
        return held is not None and held[0] == entry[1]
