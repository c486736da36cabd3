"""Which reactor rings for a new job, and when the others do (no database)."""

from __future__ import annotations

from collections import Counter

import anyio
import pytest
from bson import ObjectId

from reactor import rendezvous
from reactor.queries import Tier
from reactor.rendezvous import Deferrals, Preference

FLEET = [f"host-{n}:{1000 + n}:abc" for n in range(4)]


def _preferences(fleet: list[str]) -> list[Preference]:
    preferences = [Preference(owner) for owner in fleet]
    for preference in preferences:
        preference.update(fleet)
    return preferences


def test_every_job_has_exactly_one_preferred_reactor_in_the_fleet() -> None:
    """Each reactor computes the choice alone; for every job exactly one says "mine"."""
    preferences = _preferences(FLEET)
    for _ in range(500):
        doc_id = ObjectId()
        assert sum(p.mine(doc_id) for p in preferences) == 1


def test_jobs_spread_over_the_fleet() -> None:
    """Four reactors each prefer roughly a quarter of the jobs."""
    preferences = _preferences(FLEET)
    share = Counter(
        next(p.owner for p in preferences if p.mine(doc_id))
        for doc_id in (ObjectId() for _ in range(4000))
    )
    assert set(share) == set(FLEET)
    assert all(700 < count < 1300 for count in share.values()), share


def test_a_reactor_leaving_moves_only_its_own_jobs() -> None:
    """A job preferred by a reactor that stays keeps that reactor when another leaves."""
    before = _preferences(FLEET)
    after = _preferences(FLEET[:-1])
    for doc_id in (ObjectId() for _ in range(1000)):
        owner = next(p.owner for p in before if p.mine(doc_id))
        if owner != FLEET[-1]:
            assert next(p.owner for p in after if p.mine(doc_id)) == owner


def test_a_reactor_alone_or_without_a_fleet_prefers_every_job() -> None:
    """Until the first heartbeat reads the fleet, and when no other has room, all are its own."""
    preference = Preference(FLEET[0])
    assert preference.mine(ObjectId())
    preference.update([FLEET[0]])
    assert preference.alone
    assert preference.mine({"any": "document id"})


class Rings:
    def __init__(self) -> None:
        self.rung: list[tuple[Tier, ...]] = []
        self.event = anyio.Event()

    def __call__(self, *tiers: Tier, count: int | None = None) -> None:
        assert count == 1
        self.rung.append(tiers)
        self.event.set()


def test_a_deferred_job_rings_after_the_grace_unless_claimed() -> None:
    """A job another reactor is preferred for rings once its grace is over; a claim heard of
    before then means it never rings."""
    now = [0.0]
    rings = Rings()
    deferrals = Deferrals(rings, 0.5, now=lambda: now[0])
    assert deferrals.defer(1, (Tier.DEFAULT,))
    assert deferrals.defer({"doc": 2}, (Tier.POSITIVE,))  # any BSON _id, documents too
    deferrals.claimed({"doc": 2})
    now[0] = 0.4
    deferrals._ring_due()
    assert rings.rung == []
    now[0] = 0.5
    assert deferrals._wait_s() == 0
    deferrals._ring_due()
    assert rings.rung == [(Tier.DEFAULT,)]
    assert len(deferrals) == 0
    assert deferrals._wait_s() == float("inf")


def test_a_job_deferred_again_waits_a_whole_grace() -> None:
    """A job claimed, then offered again (a replaced document), rings a grace after its new
    offer, not at its old time."""
    now = [0.0]
    rings = Rings()
    deferrals = Deferrals(rings, 1.0, now=lambda: now[0])
    deferrals.defer(1, (Tier.DEFAULT,))
    deferrals.claimed(1)
    now[0] = 0.5
    deferrals.defer(1, (Tier.NEGATIVE,))
    now[0] = 1.0
    deferrals._ring_due()
    assert rings.rung == []
    now[0] = 1.5
    deferrals._ring_due()
    assert rings.rung == [(Tier.NEGATIVE,)]


def test_nothing_is_deferred_without_a_grace_or_past_the_cap(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A grace of 0 makes every reactor ring at once; so does a backlog of deferrals."""
    assert not Deferrals(Rings(), 0.0).defer(1, (Tier.DEFAULT,))
    monkeypatch.setattr(rendezvous, "MAX_DEFERRED", 2)
    deferrals = Deferrals(Rings(), 1.0)
    assert [deferrals.defer(n, (Tier.DEFAULT,)) for n in range(3)] == [True, True, False]


def test_a_catch_up_forgets_what_was_deferred() -> None:
    """A reopened stream rings every tier anyway: deferred jobs are dropped."""
    now = [0.0]
    rings = Rings()
    deferrals = Deferrals(rings, 0.5, now=lambda: now[0])
    deferrals.defer(1, (Tier.DEFAULT,))
    deferrals.forget()
    now[0] = 1.0
    deferrals._ring_due()
    assert rings.rung == []
    assert len(deferrals) == 0


async def test_the_deferrals_task_rings_when_the_grace_is_over() -> None:
    """The task sleeps until the first deferral falls due, then rings it."""
    rings = Rings()
    deferrals = Deferrals(rings, 0.05)
    async with anyio.create_task_group() as tg:
        tg.start_soon(deferrals.run)
        deferrals.defer(1, (Tier.DEFAULT,))
        with anyio.fail_after(5):
            await rings.event.wait()
        tg.cancel_scope.cancel()
    assert rings.rung == [(Tier.DEFAULT,)]
