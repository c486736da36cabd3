"""Which claim tiers to try, and trying them: the claim loop's one question, "what next?".

A tier is tried only when something raised it: an event about a job it can claim, a finished
job's freed slot (the tiers stay raised until one comes up empty), the sweep (every tier), a
timer for a due job, or a (re)opened stream (every tier: the catch-up). An empty answer lowers
the tier, unless something raised it again while the claim was on its way (a generation count
tells), or the claim was restricted (commands at their limit were left out, so "empty" does not
mean empty). A plain insert therefore costs one claim, and a burst costs one claim per job plus
one empty answer.
"""

from __future__ import annotations

from collections.abc import Callable

import anyio
from pymongo.errors import OperationFailure

from reactor.logging import get_logger
from reactor.model import Job
from reactor.queries import CLAIM_ORDER, UNRESTRICTED, Restriction, Tier
from reactor.store import Store

log = get_logger("reactor.claims")

TYPE_MISMATCH = 14  # the claim's $inc met a non-numeric fence


class Tiers:
    """Raised flags with generations, so an empty answer cannot lower a newer raise."""

    def __init__(self) -> None:
        self._raised: set[Tier] = set(CLAIM_ORDER)  # start: everything (the first catch-up)
        self._generation = dict.fromkeys(CLAIM_ORDER, 0)

    def raise_(self, *tiers: Tier) -> None:
        for tier in tiers:
            self._raised.add(tier)
            self._generation[tier] += 1

    def raised(self) -> list[Tier]:
        return [tier for tier in CLAIM_ORDER if tier in self._raised]

    def generation(self, tier: Tier) -> int:
        return self._generation[tier]

    def lower(self, tier: Tier, generation: int) -> None:
        if self._generation[tier] == generation:
            self._raised.discard(tier)

    @property
    def any(self) -> bool:
        return bool(self._raised)


class Bell:
    """Raised tiers and the claim loop's wake-up: many ring, one waits; rings coalesce."""

    def __init__(self) -> None:
        self.tiers = Tiers()
        self._event = anyio.Event()

    def ring(self, *tiers: Tier) -> None:
        """Raise ``tiers`` (none: just wake, e.g. a freed slot) and wake the claim loop."""
        self.tiers.raise_(*tiers)
        self._event.set()

    async def wait(self) -> None:
        await self._event.wait()
        self._event = anyio.Event()


class Claimer:
    """Claims the next job from the raised tiers, in order."""

    def __init__(self, store: Store, tiers: Tiers, stopping: Callable[[], bool]) -> None:
        self.store = store
        self.tiers = tiers
        self.stopping = stopping

    async def next(
        self, restriction: Restriction = UNRESTRICTED, *, reclaim: bool = True
    ) -> Job | None:
        """The next job, or ``None`` when every raised tier is empty (for this restriction;
        ``reclaim=False`` leaves expired leases alone for now)."""
        for tier in self.tiers.raised():
            if self.stopping():
                return None
            generation = self.tiers.generation(tier)
            held_back = tier is Tier.REPAIR and not reclaim
            job = await self._claim(tier, restriction, reclaim)
            if job is not None:
                return job
            if not (restriction.any or held_back):
                self.tiers.lower(tier, generation)
        return None

    async def _claim(self, tier: Tier, restriction: Restriction, reclaim: bool) -> Job | None:
        try:
            return await self.store.claim_tier(tier, restriction, reclaim=reclaim)
        except OperationFailure as exc:
            if exc.code != TYPE_MISMATCH:
                raise
            repaired = await self.store.repair_fences()
            log.warning("claim_fences_repaired", jobs=repaired, error=str(exc))
            return await self.store.claim_tier(tier, restriction, reclaim=reclaim)
