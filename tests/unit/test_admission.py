"""Admission: backpressure before claiming, limits per command and for the pool, running alone."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import anyio
from bson import ObjectId

from reactor.admission import Admission, Limits
from reactor.claim_loop import ClaimLoop, Intake
from reactor.claims import Bell
from reactor.connectivity import Connectivity
from reactor.delays import DueTimer
from reactor.errors import CancelPending
from reactor.indexes import IndexKeeper
from reactor.metrics import Metrics
from reactor.model import CancelRequest, Job
from reactor.queries import Restriction
from reactor.shutdown import Shutdown


def _limits(max_jobs: int = 4, **per_command: int) -> Limits:
    return Limits(max_jobs=max_jobs, cpu_slots=1, cpu_commands=frozenset({"ocr", "deskew"}),
                  per_command=per_command)  # fmt: skip


def _job(command: str = "echo") -> Job:
    doc = {"_id": ObjectId(), "job_id": f"j-{ObjectId()}", "command": command, "args": {}}
    return Job.from_claim(doc, "me", datetime.now(UTC))


class _Jobs:
    """A store that hands out jobs from a list and counts the claims it answers."""

    def __init__(self, jobs: list[Job]) -> None:
        self.waiting = jobs
        self.claims = 0

    async def claim_tier(self, tier: Any, restriction: Restriction, *, reclaim: bool) -> Job | None:
        self.claims += 1
        return self.waiting.pop(0) if self.waiting else None

    async def earliest_due(self) -> None:
        return None


class _HeldJobs:
    """A dispatcher whose jobs run until the test releases them."""

    def __init__(self) -> None:
        self.running = 0
        self.release = anyio.Event()

    async def run(self, job: Job) -> None:
        self.running += 1
        await self.release.wait()


async def test_no_claim_is_made_while_every_slot_is_held() -> None:
    """With max_jobs jobs running, rings of the bell claim nothing; a freed slot claims again."""
    store, dispatcher, bell = _Jobs([_job() for _ in range(5)]), _HeldJobs(), Bell()
    admission, shutdown = Admission(_limits(max_jobs=2)), Shutdown()
    loop = ClaimLoop(Intake(store, bell, admission, Connectivity(5.0), IndexKeeper(store),
                            DueTimer(bell.ring), dispatcher, shutdown, Metrics()))  # fmt: skip
    async with anyio.create_task_group() as tg:
        tg.start_soon(loop.run, tg)
        bell.ring()
        await anyio.wait_all_tasks_blocked()
        assert (dispatcher.running, store.claims, admission.in_flight) == (2, 2, 2)
        for _ in range(3):
            bell.ring()
            await anyio.wait_all_tasks_blocked()
        assert store.claims == 2  # every slot held: the bell was heard, nothing was claimed
        dispatcher.release.set()
        await anyio.wait_all_tasks_blocked()
        assert (dispatcher.running, admission.in_flight) == (5, 0)
        shutdown.request()
        bell.ring()


async def test_a_command_at_its_limit_is_left_out_of_the_claim() -> None:
    """A handler's max_concurrency and the CPU slots restrict the claim query, not the loop."""
    admission = Admission(_limits(solo=1))
    assert admission.restriction() == Restriction()
    solo = (await admission.reserve()).take("solo")
    assert admission.restriction().exclude == ("solo",)
    ocr = (await admission.reserve()).take("ocr")
    assert admission.restriction().exclude == ("deskew", "ocr", "solo")
    solo.release()
    ocr.release()
    assert admission.restriction() == Restriction()


async def test_in_flight_and_idle_are_counted_by_admission_alone() -> None:
    """Slots count in flight from reservation to release; until_idle returns when none is held."""
    admission = Admission(_limits())
    first, second = await admission.reserve(), await admission.reserve()
    assert admission.in_flight == 2
    first.release()
    first.release()  # releasing twice gives back one slot
    assert admission.in_flight == 1
    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(admission.until_idle)
            await anyio.wait_all_tasks_blocked()
            with second:
                pass
    assert admission.in_flight == 0


async def test_a_reclaimed_job_runs_alone_among_in_process_jobs() -> None:
    """An exclusive run waits for shared ones, blocks new ones, and pool jobs are not held."""
    admission = Admission(_limits())
    log: list[str] = []
    shared_started, release_shared = anyio.Event(), anyio.Event()

    async def shared(name: str, wait: anyio.Event | None = None) -> None:
        async with admission.run_slot(in_process=True, alone=False):
            log.append(f"{name} start")
            shared_started.set()
            if wait is not None:
                await wait.wait()
            log.append(f"{name} end")

    async def alone() -> None:
        async with admission.run_slot(in_process=True, alone=True):
            log.append("alone start")
            await anyio.sleep(0.01)
            log.append("alone end")

    async with anyio.create_task_group() as tg:
        tg.start_soon(shared, "first", release_shared)
        await shared_started.wait()
        tg.start_soon(alone)
        await anyio.wait_all_tasks_blocked()
        assert admission.restriction().only == ("deskew", "ocr")  # in-process work not claimed
        tg.start_soon(shared, "second")
        await anyio.wait_all_tasks_blocked()
        async with admission.run_slot(in_process=False, alone=False):
            log.append("pool job")  # not held by the exclusive run
        release_shared.set()
    assert log == ["first start", "pool job", "first end", "alone start", "alone end",
                   "second start", "second end"]  # fmt: skip
    assert admission.restriction().only is None


async def test_a_batch_takes_only_what_fits_every_limit() -> None:
    """Free slots are reserved at once for a batch claim, and of the candidates (in claim order)
    only those that fit each command's limit and the CPU slots are chosen."""
    admission = Admission(_limits(max_jobs=6, solo=1))
    first = await admission.reserve()
    extra = admission.reserve_now(10)
    assert (len(extra), admission.in_flight) == (5, 6)
    candidates = ["solo", "solo", "ocr", "echo", "deskew", 42, "echo"]
    assert admission.choose(candidates, slots=6) == [0, 2, 3, 5, 6]  # one solo, one CPU job
    assert admission.choose(candidates, slots=2) == [0, 2]
    for slot in [first, *extra]:
        slot.release()
    assert admission.in_flight == 0


class _CancelledMeanwhile(_Jobs):
    """A store whose claim comes as the stop does, and whose job a client cancelled meanwhile:
    its hand-back is refused with CancelPending."""

    def __init__(self, shutdown: Shutdown) -> None:
        super().__init__([_job()])
        self.shutdown = shutdown

    async def claim_tier(self, tier: Any, restriction: Restriction, *, reclaim: bool) -> Job | None:
        self.shutdown.request()
        return await super().claim_tier(tier, restriction, reclaim=reclaim)

    async def hand_back(self, job: Job) -> None:
        raise CancelPending("cancel_requested", None)


class _Recorded:
    def __init__(self) -> None:
        self.jobs: list[Job] = []

    async def run(self, job: Job) -> None:
        self.jobs.append(job)


async def test_a_job_cancelled_before_its_hand_back_at_the_stop_is_recorded_cancelled() -> None:
    """A job claimed as the stop came is handed back; if a client cancelled it meanwhile, the
    loop records the cancellation (the job runs with its cancel set, so it never starts)
    instead of failing the service."""
    shutdown, bell, dispatcher = Shutdown(), Bell(), _Recorded()
    store = _CancelledMeanwhile(shutdown)
    loop = ClaimLoop(Intake(store, bell, Admission(_limits()), Connectivity(5.0),
                            IndexKeeper(store), DueTimer(bell.ring), dispatcher, shutdown,
                            Metrics()))  # fmt: skip
    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            bell.ring()
            await loop.run(tg)
    assert [job.cancel for job in dispatcher.jobs] == [CancelRequest("cancel_requested", None)]
