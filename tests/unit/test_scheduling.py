"""The claim loop's small helpers: raised tiers, the due timer, progress writes."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import anyio
import pytest

from reactor.claims import BATCH_MAX, Tiers
from reactor.delays import DueTimer
from reactor.progress import Writer, check_fraction
from reactor.queries import CLAIM_ORDER, Tier


def test_every_tier_is_raised_at_start_and_lowered_by_an_empty_answer() -> None:
    """The first round tries everything (the catch-up); an empty tier is not tried again."""
    tiers = Tiers()
    assert tiers.raised() == list(CLAIM_ORDER)
    for tier in CLAIM_ORDER:
        tiers.lower(tier, tiers.generation(tier))
    assert not tiers.any
    tiers.raise_(Tier.POSITIVE)
    assert tiers.raised() == [Tier.POSITIVE]


def test_an_empty_answer_does_not_lower_a_newer_raise() -> None:
    """A tier raised while its claim was on the way stays raised."""
    tiers = Tiers()
    generation = tiers.generation(Tier.DEFAULT)
    tiers.raise_(Tier.DEFAULT)  # an insert arrived meanwhile
    tiers.lower(Tier.DEFAULT, generation)
    assert Tier.DEFAULT in tiers.raised()


async def test_the_due_timer_fires_at_the_earliest_offered_time() -> None:
    """Offers keep the earliest due time; the timer wakes once when it comes."""
    woken: list[float] = []
    timer = DueTimer(lambda: woken.append(time.monotonic()))
    timer.lookup_needed = False
    start = time.monotonic()
    async with anyio.create_task_group() as tg:
        tg.start_soon(timer.run)
        timer.offer(datetime.now(UTC) + timedelta(seconds=5))
        timer.offer(datetime.now(UTC) + timedelta(seconds=0.3))
        with anyio.fail_after(10):
            while not woken:  # noqa: ASYNC110 (the timer task appends)
                await anyio.sleep(0.02)
        tg.cancel_scope.cancel()
    assert woken[0] - start >= 0.25
    assert timer.due is None
    assert timer.lookup_needed  # the next earliest is unknown after firing


async def test_progress_writes_are_throttled_and_the_latest_wins() -> None:
    """Reports in a burst produce one write now and one with the latest value a second later."""
    written: list[tuple[float, str | None, float]] = []

    async def write(fraction: float, message: str | None) -> None:
        written.append((fraction, message, time.monotonic()))

    writer = Writer(write, interval_s=0.5)
    async with anyio.create_task_group() as tg:
        tg.start_soon(writer.run)
        writer.report(0.1, "a")
        await anyio.wait_all_tasks_blocked()
        for i in range(2, 10):
            writer.report(i / 10, f"step {i}")
        with anyio.fail_after(10):
            while len(written) < 2:  # noqa: ASYNC110 (the writer task appends)
                await anyio.sleep(0.02)
        tg.cancel_scope.cancel()
    assert [(f, m) for f, m, _ in written] == [(0.1, "a"), (0.9, "step 9")]
    assert written[1][2] - written[0][2] >= 0.45


@pytest.mark.parametrize(("value", "expected"), [(-1, 0.0), (0.5, 0.5), (7, 1.0)])
def test_progress_fractions_are_clamped(value: float, expected: float) -> None:
    """Fractions outside 0..1 are clamped."""
    assert check_fraction(value) == expected


@pytest.mark.parametrize("value", [float("nan"), "half", True])
def test_progress_fractions_must_be_numbers(value: object) -> None:
    """NaN, strings and booleans are refused with ValueError."""
    with pytest.raises(ValueError, match="progress fraction"):
        check_fraction(value)  # type: ignore[arg-type]


def test_a_tier_raised_for_announced_jobs_is_lowered_once_they_are_claimed() -> None:
    """Events announce how many jobs arrived: once that many are claimed the tier is lowered
    without another (empty) claim; an unknown count (the catch-up) waits for an empty answer."""
    tiers = Tiers()
    for tier in CLAIM_ORDER:
        tiers.lower(tier, tiers.generation(tier))
    tiers.raise_(Tier.DEFAULT, count=1)
    tiers.raise_(Tier.DEFAULT, count=1)
    tiers.claimed(Tier.DEFAULT)
    assert tiers.raised() == [Tier.DEFAULT]
    tiers.claimed(Tier.DEFAULT)
    assert not tiers.any
    tiers.raise_(Tier.DEFAULT, count=1)
    tiers.raise_(Tier.DEFAULT)  # the catch-up: however many
    tiers.claimed(Tier.DEFAULT, 5)
    assert tiers.raised() == [Tier.DEFAULT]


def test_a_claim_round_holds_as_many_slots_as_the_raised_tiers_announced() -> None:
    """One job announced: one slot; the largest count of any raised tier, at most a batch; an
    unknown count (the catch-up): a whole batch; nothing raised: none."""
    tiers = Tiers()
    assert tiers.wanted() == BATCH_MAX  # the start: every tier, by an unknown count
    for tier in CLAIM_ORDER:
        tiers.lower(tier, tiers.generation(tier))
    assert tiers.wanted() == 0
    tiers.raise_(Tier.DEFAULT, count=1)
    assert tiers.wanted() == 1
    tiers.raise_(Tier.POSITIVE, count=3)
    assert tiers.wanted() == 3
    tiers.raise_(Tier.NEGATIVE, count=BATCH_MAX + 5)
    assert tiers.wanted() == BATCH_MAX
