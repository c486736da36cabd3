"""Which claim tiers to try, and trying them: the claim loop's one question, "what next?".

A tier is tried only when something raised it: an event about a job it can claim, a finished
job's freed slot (the tiers stay raised until one comes up empty), the sweep (every tier), a
timer for a due job, or a (re)opened stream (every tier: the catch-up). An empty answer lowers
the tier, unless something raised it again while the claim was on its way (a generation count
tells), or the claim was restricted (commands at their limit were left out, so "empty" does not
mean empty). A raise by events counts the jobs they announced: once that many are claimed, the
tier is lowered without asking again. A plain insert therefore costs one claim, not one claim
and an empty answer; the catch-up, the sweep and the timers raise a tier "by an unknown count",
which only an empty answer lowers.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anyio
from pymongo.errors import OperationFailure

from reactor.logging import get_logger
from reactor.model import Job
from reactor.queries import CLAIM_ORDER, UNRESTRICTED, Restriction, Tier
from reactor.store import Store

log = get_logger("reactor.claims")

TYPE_MISMATCH = 14  # the claim's $inc met a non-numeric fence
BATCH_MAX = 32  # jobs one batch claim may take


class Tiers:
    """Raised tiers with the number of jobs announced for each (``None``: unknown), and
    generations, so an empty answer cannot lower a newer raise."""

    def __init__(self) -> None:
        # start: everything, by an unknown count (the first catch-up)
        self._raised: dict[Tier, int | None] = dict.fromkeys(CLAIM_ORDER)
        self._generation = dict.fromkeys(CLAIM_ORDER, 0)

    def raise_(self, *tiers: Tier, count: int | None = None) -> None:
        """Raise ``tiers`` for ``count`` more announced jobs each (``None``: unknown)."""
        for tier in tiers:
            known = self._raised.get(tier, 0) if tier in self._raised else 0
            self._raised[tier] = None if count is None or known is None else known + count
            self._generation[tier] += 1

    def raised(self) -> list[Tier]:
        return [tier for tier in CLAIM_ORDER if tier in self._raised]

    def generation(self, tier: Tier) -> int:
        return self._generation[tier]

    def expected(self, tier: Tier) -> int | None:
        """How many jobs were announced for a raised tier (``None``: unknown; 0: not raised)."""
        return self._raised.get(tier, 0) if tier in self._raised else 0

    def wanted(self) -> int:
        """The most jobs one claim round can take: the largest count a raised tier announced
        (unknown: :data:`BATCH_MAX`), at most :data:`BATCH_MAX`; 0 when none is raised."""
        counts = [BATCH_MAX if n is None else n for n in self._raised.values()]
        return min(max(counts, default=0), BATCH_MAX)

    def claimed(self, tier: Tier, n: int = 1) -> None:
        """``n`` jobs came from ``tier``: the last of those announced lowers it."""
        left = self._raised.get(tier)
        if left is not None:
            if left <= n:
                del self._raised[tier]
            else:
                self._raised[tier] = left - n

    def lower(self, tier: Tier, generation: int) -> None:
        if self._generation[tier] == generation:
            self._raised.pop(tier, None)

    @property
    def any(self) -> bool:
        return bool(self._raised)


class Bell:
    """Raised tiers and the claim loop's wake-up: many ring, one waits; rings coalesce."""

    def __init__(self) -> None:
        self.tiers = Tiers()
        self._event = anyio.Event()

    def ring(self, *tiers: Tier, count: int | None = None) -> None:
        """Raise ``tiers`` (none: just wake, e.g. a freed slot) for ``count`` announced jobs
        (``None``: unknown) and wake the claim loop."""
        self.tiers.raise_(*tiers, count=count)
        self._event.set()

    async def wait(self) -> None:
        await self._event.wait()
        self._event = anyio.Event()


class Claimer:
    """Claims the next jobs from the raised tiers, in order: one with a single
    ``find_one_and_update``, or, when the tier holds more than one and more than one slot is
    free, a batch in three round trips whatever its size (``Store.claim_batch``)."""

    def __init__(
        self,
        store: Store,
        tiers: Tiers,
        stopping: Callable[[], bool],
        choose: Callable[[list[Any], int], list[int]],
    ) -> None:
        self.store = store
        self.tiers = tiers
        self.stopping = stopping
        self.choose = choose  # admission's pick of candidates that fit the free slots

    async def next(
        self, restriction: Restriction = UNRESTRICTED, *, reclaim: bool = True, most: int = 1
    ) -> list[Job]:
        """Up to ``most`` jobs from the first raised tier that has any; empty when every raised
        tier is empty (for this restriction; ``reclaim=False`` leaves expired leases alone)."""
        for tier in self.tiers.raised():
            if self.stopping():
                return []
            generation = self.tiers.generation(tier)
            held_back = tier is Tier.REPAIR and not reclaim
            jobs = await self._claim(tier, restriction, reclaim, most)
            if jobs:
                self.tiers.claimed(tier, len(jobs))
                return jobs
            if not (restriction.any or held_back):
                self.tiers.lower(tier, generation)
        return []

    async def _claim(
        self, tier: Tier, restriction: Restriction, reclaim: bool, most: int
    ) -> list[Job]:
        try:
            return await self._claim_once(tier, restriction, reclaim, most)
        except OperationFailure as exc:
            if exc.code != TYPE_MISMATCH:
                raise
            repaired = await self.store.repair_fences()
            log.warning("claim_fences_repaired", jobs=repaired, error=str(exc))
            return await self._claim_once(tier, restriction, reclaim, most)

    async def _claim_once(
        self, tier: Tier, restriction: Restriction, reclaim: bool, most: int
    ) -> list[Job]:
        expected = self.tiers.expected(tier)
        batch = min(most, BATCH_MAX if expected is None else expected)
        if batch > 1 and tier is not Tier.REPAIR:
            jobs = await self.store.claim_batch(
                tier, restriction, batch, lambda commands: self.choose(commands, batch)
            )
            if jobs is not None:
                return jobs
            # Candidates, none claimed (another reactor took them between the batch's find and
            # its claim): a single claim says whether the tier is empty now.
        job = await self.store.claim_tier(tier, restriction, reclaim=reclaim)
        return [job] if job is not None else []
