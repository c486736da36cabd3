"""The claim loop's small helpers: raised tiers, running alone, the due timer, progress writes."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import anyio
import pytest

from reactor.claims import Tiers
from reactor.delays import DueTimer
from reactor.isolation import Isolation, Outages
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


async def test_a_reclaimed_job_runs_alone_among_in_process_jobs() -> None:
    """An exclusive run waits for shared ones, blocks new ones, and pool jobs are not held."""
    gate = Isolation()
    log: list[str] = []
    shared_started = anyio.Event()
    release_shared = anyio.Event()

    async def shared(name: str, wait: anyio.Event | None = None) -> None:
        async with gate.slot(in_process=True, alone=False):
            log.append(f"{name} start")
            shared_started.set()
            if wait is not None:
                await wait.wait()
            log.append(f"{name} end")

    async def alone() -> None:
        async with gate.slot(in_process=True, alone=True):
            log.append("alone start")
            await anyio.sleep(0.01)
            log.append("alone end")

    async with anyio.create_task_group() as tg:
        tg.start_soon(shared, "first", release_shared)
        await shared_started.wait()
        tg.start_soon(alone)
        await anyio.wait_all_tasks_blocked()
        assert gate.active
        tg.start_soon(shared, "second")
        await anyio.wait_all_tasks_blocked()
        async with gate.slot(in_process=False, alone=False):
            log.append("pool job")  # not held by the exclusive run
        release_shared.set()
    assert log == [
        "first start",
        "pool job",
        "first end",
        "alone start",
        "alone end",
        "second start",
        "second end",
    ]
    assert not gate.active


def test_an_outage_explains_the_leases_that_ran_out_around_it() -> None:
    """A lease that expired while (or a lease's length around when) MongoDB was unreachable is
    explained by the outage; one that expired before it, or with no outage seen, is not."""
    outages = Outages(lease_s=5)
    now = datetime.now(UTC)
    assert not outages.explain(now)  # no outage seen
    outages.up()  # the first connection: opens nothing
    assert not outages.explain(now)
    outages.down()
    assert outages.explain(datetime.now(UTC) + timedelta(seconds=3))  # still down
    outages.up()
    assert outages.explain(now - timedelta(seconds=4))
    assert outages.explain(datetime.now(UTC) + timedelta(seconds=4))
    assert not outages.explain(now - timedelta(seconds=30))
    assert not outages.explain(datetime.now(UTC) + timedelta(seconds=30))
    assert not outages.explain(None)


def test_failed_calls_mark_an_outage_the_monitor_did_not_see() -> None:
    """A blackhole times calls out without the driver's monitor noticing: a call that failed
    after 10 s says MongoDB was away for those 10 s."""
    outages = Outages(lease_s=2)
    now = datetime.now(UTC)
    outages.call_failed(10)
    assert outages.explain(now - timedelta(seconds=9))
    assert not outages.explain(now - timedelta(seconds=15))
    outages.call_failed(0.5)  # the same outage, still under way
    assert outages.explain(now - timedelta(seconds=9))


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
