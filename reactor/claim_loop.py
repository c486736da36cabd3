"""The claim loop: the only place jobs enter this reactor.

It waits for the bell (``claims.Bell``), then claims while admission has room: a slot is reserved
*before* each claim, so with every slot held it claims nothing (backpressure), and commands at
their limit are left out of the claim query. A round holds as many slots as the raised tiers
announced jobs (``Tiers.wanted``), not a whole batch's worth for each single job. Each claimed
job runs in the service's task group, holding its slot until its outcome is recorded, then rings
the bell (a slot is free). A claim that
fails because MongoDB blinked is tried again a second later; the indexes are ensured again first.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass

import anyio
from anyio.abc import TaskGroup
from pymongo.errors import PyMongoError

from reactor.admission import Admission, Slot
from reactor.claims import Bell, Claimer
from reactor.connectivity import Connectivity
from reactor.delays import DueTimer
from reactor.dispatch import Dispatcher
from reactor.errors import CancelPending, LeaseLost
from reactor.indexes import IndexKeeper
from reactor.logging import get_logger
from reactor.metrics import Metrics
from reactor.model import CancelRequest, Job
from reactor.shutdown import Shutdown
from reactor.store import Store

log = get_logger("reactor.claim_loop")

CLAIM_RETRY_S = 1.0


@dataclass(frozen=True)
class Intake:
    """What the claim loop works with, built once by the service."""

    store: Store
    bell: Bell
    admission: Admission
    connectivity: Connectivity
    indexes: IndexKeeper
    delays: DueTimer
    dispatcher: Dispatcher
    shutdown: Shutdown
    metrics: Metrics


class ClaimLoop:
    """Claims jobs and starts them in a task group; never returns until the shutdown."""

    def __init__(self, intake: Intake) -> None:
        self._in = intake
        self._claimer = Claimer(
            intake.store,
            intake.bell.tiers,
            lambda: intake.shutdown.requested,
            intake.admission.choose,
        )
        self.last_claim = time.monotonic()  # the last completed claim (for liveness)

    async def run(self, tg: TaskGroup) -> None:
        stopping = self._in.shutdown
        while not stopping.requested:
            await self._in.bell.wait()
            await self._round(tg)
            if not stopping.requested:
                await self._in.delays.refresh(self._in.store)

    async def _round(self, tg: TaskGroup) -> None:
        while not self._in.shutdown.requested:
            wanted = self._in.bell.tiers.wanted()
            if not wanted:
                return  # nothing announced: no slot to hold, no claim to try
            first = await self._in.admission.reserve()
            slots = [first, *self._in.admission.reserve_now(wanted - 1)]
            jobs = await self._claim(len(slots))
            for job, slot in zip(jobs, slots, strict=False):
                tg.start_soon(self._run, job, slot.take(job.command_name))
            for slot in slots[len(jobs) :]:
                slot.release()
            if not jobs:
                return

    async def _run(self, job: Job, slot: Slot) -> None:
        with slot:
            await self._in.dispatcher.run(job)
        self._in.bell.ring()

    async def _claim(self, most: int) -> list[Job]:
        if self._in.shutdown.requested:
            return []
        try:
            await self._in.indexes.ensure_if_due()
            jobs = await self._claimer.next(
                self._in.admission.restriction(),
                reclaim=self._in.connectivity.reclaim_allowed(),
                most=most,
            )
        except PyMongoError as exc:
            await self._claim_failed(exc)
            return []
        finally:
            self.last_claim = time.monotonic()
        if jobs and self._in.shutdown.requested:
            for job in jobs:  # claimed while the stop came: not ours to start
                await self._hand_back_now(job)
            return []
        for job in jobs:
            if job.reclaimed:
                self._in.metrics.lease_expiries.inc()
                log.info("job_reclaimed", job_id=job.key, attempt=job.attempt, fence=job.fence)
        return jobs

    async def _claim_failed(self, exc: PyMongoError) -> None:
        log.warning("claim_failed", error=str(exc), error_type=type(exc).__name__,
                    retry_in_s=CLAIM_RETRY_S)  # fmt: skip
        self._in.indexes.mark_due()
        await anyio.sleep(CLAIM_RETRY_S)
        self._in.bell.ring()

    async def _hand_back_now(self, job: Job) -> None:
        try:
            await self._in.store.hand_back(job)
            log.info("job_handed_back", job_id=job.key, attempt=job.attempt)
        except CancelPending as exc:  # a client cancelled it meanwhile: record that, unrun
            request = CancelRequest(exc.via, exc.requested_at)
            await self._in.dispatcher.run(dataclasses.replace(job, cancel=request))
        except (LeaseLost, PyMongoError) as exc:
            log.warning("job_hand_back_failed", job_id=job.key, error=str(exc))
