"""Wiring: one task group owns the stream, the claim loop, the timers, the endpoints and every job.

The claim loop is the only place jobs enter. It takes a global slot *before* claiming, so when
``max_jobs`` are in flight it stops claiming (backpressure) while the stream goes on reading and
raising claim tiers (``claims.py``). Commands whose own limit is reached, CPU commands when every
CPU slot is busy, and in-process commands while a reclaimed job runs alone are left out of the
claim query, so other work still flows. Each job releases its slots in ``finally`` and wakes the
loop. An exception nobody expected ends the whole task group, and with it the process (crash-only).
"""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

import anyio
import pymongo
from anyio.abc import TaskGroup, TaskStatus
from pymongo import AsyncMongoClient
from pymongo.errors import PyMongoError

from reactor import adopt, progress
from reactor.cancel import CancelBoard, Reason
from reactor.claims import Claimer, Tiers
from reactor.config import Settings
from reactor.connect import connect
from reactor.delays import DueTimer
from reactor.dispatch import Dispatcher, Limits
from reactor.driver import SHUTDOWN_TIMEOUT_S, Calls, install_lock_fix, is_transient
from reactor.errors import ConfigError, LeaseLost
from reactor.handler import Runs
from reactor.isolation import Isolation, Outages
from reactor.liveness import Liveness, Watchdog
from reactor.logging import get_logger
from reactor.metrics import Metrics
from reactor.model import CancelRequest, Job
from reactor.queries import CLAIM_ORDER, Tier
from reactor.reconnects import Reconnects
from reactor.registry import Registry, load_registry
from reactor.retry import RetryPolicy
from reactor.store import Store
from reactor.stream import QUEUED_TIERS, JobStream

log = get_logger("reactor.service")

CLAIM_RETRY_S = 1.0
HAND_BACK_S = 2.0  # how long stopped jobs may take to be handed back at shutdown
CANCEL_TASKS = 16  # targeted claims for cancellation running at once


class Wakeup:
    """A flag that many wake-ups set and one waiter consumes: events coalesce, never queue."""

    def __init__(self) -> None:
        self._event = anyio.Event()

    def set(self) -> None:
        self._event.set()

    async def wait(self) -> None:
        await self._event.wait()
        self._event = anyio.Event()


class Reactor:
    """A running reactor: ``await reactor.serve()`` until :meth:`stop`."""

    def __init__(
        self, settings: Settings, *, registry: Registry | None = None, exit_on_wedge: bool = False
    ) -> None:
        self.settings = settings
        self.registry = (
            registry
            if registry is not None
            else load_registry(modules=settings.handler_module_list)
        )
        self.metrics = Metrics()
        self.calls = Calls()
        self.client: AsyncMongoClient[dict[str, Any]] | None = None
        self.store: Store | None = None
        self.stream: JobStream | None = None
        self.pool: Any = None
        self.board = CancelBoard()
        self.isolation = Isolation()
        self.outages = Outages(self.settings.lease_s)
        self.calls.on_failure = self.outages.call_failed
        self.tiers = Tiers()
        self._wake = Wakeup()
        self.delays = DueTimer(lambda: self.wake(*QUEUED_TIERS))
        self._stopping = anyio.Event()
        self._forced = False
        self._indexes_due = True
        self._slots = anyio.Semaphore(settings.max_jobs)
        self._cpu_slots = anyio.Semaphore(settings.cpu_workers)
        self._cancel_slots = anyio.Semaphore(CANCEL_TASKS)
        self._handler_slots = {
            h.name: anyio.Semaphore(h.options.max_concurrency)
            for h in self.registry
            if h.options.max_concurrency
        }
        self._cpu_commands = [h.name for h in self.registry if h.runs is Runs.PROCESS]
        self.in_flight = 0
        self._idle = anyio.Event()
        self._idle.set()
        self.liveness = Liveness(
            settings.liveness_s, self.calls, stream_timeout_s=settings.mongo_timeout_s + 1
        )
        self.liveness.work_waiting = self._work_waiting
        self.watchdog = Watchdog(self.liveness, exit_on_wedge=exit_on_wedge)
        self.watchdog.on_blocked = self.metrics.loop_blocked.inc
        self.reconnects = Reconnects()
        self._tg: TaskGroup | None = None
        self._dispatcher: Dispatcher | None = None

    # -- lifecycle -------------------------------------------------------------------------

    async def serve(self, *, task_status: TaskStatus[Reactor] = anyio.TASK_STATUS_IGNORED) -> None:
        """Connect, start every task, report started, run until stopped, then drain."""
        install_lock_fix()
        self.client = await connect(self.settings, [self.reconnects])
        try:
            await self._serve(task_status)
        finally:
            self.watchdog.stop()
            self.calls.shutting_down = True
            with anyio.CancelScope(shield=True):
                if self.pool is not None:
                    await self.pool.aclose()
                with pymongo.timeout(SHUTDOWN_TIMEOUT_S):
                    await self.client.close()

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    @property
    def draining(self) -> bool:
        return self._stopping.is_set()

    def stop(self, *, force: bool = False) -> None:
        """Stop claiming and drain (``force``: stop at once, hand nothing back)."""
        self._forced = self._forced or force
        self._stopping.set()
        if force and self._tg is not None:
            self._tg.cancel_scope.cancel()

    async def _serve(self, task_status: TaskStatus[Reactor]) -> None:
        assert self.client is not None
        s = self.settings
        self.store = Store(
            self.client[s.db],
            jobs=s.jobs_collection,
            results=s.results_collection,
            owner=f"{s.worker_name}/{uuid.uuid4().hex[:8]}",
            worker=s.worker_name,
            lease_s=s.lease_s,
            result_inline_max_bytes=s.result_inline_max_bytes,
            calls=self.calls,
            timeout_s=s.mongo_timeout_s,
        )
        await self._at_startup(lambda store: adopt.ensure_indexes(store))
        self._indexes_due = False
        await self._at_startup(
            lambda store: adopt.adopt(store, apply=True, on_adopted=self.metrics.adopted.inc)
        )
        self.pool = await self._start_pool()
        self._dispatcher = self._make_dispatcher()
        self.stream = JobStream(self.store, self, on_lag=self.metrics.stream_lag.set)
        self.liveness.last_stream_turn = lambda: self.stream.last_turn if self.stream else 0.0
        progress.ROUTER.install()
        self.reconnects.bind(self._mongodb_down, self._mongodb_up)
        self.watchdog.start()
        async with anyio.create_task_group() as tg:
            self._tg = tg
            tg.start_soon(self.liveness.beat)
            tg.start_soon(self.stream.run)
            tg.start_soon(self._sweep)
            tg.start_soon(self.delays.run)
            if s.http_port:
                from reactor.web.health import serve_http

                await tg.start(serve_http, self, s.http_host, s.http_port)
            tg.start_soon(self._claim_loop, tg)
            log.info("reactor_started", worker=s.worker_name, owner=self.store.owner, db=s.db,
                     handlers=self.registry.names(), max_jobs=s.max_jobs,
                     cpu_workers=s.cpu_workers if self.pool else 0)  # fmt: skip
            task_status.started(self)
            await self._stopping.wait()
            await self._drain()
            self.watchdog.stop()
            tg.cancel_scope.cancel()
        log.info("reactor_stopped")

    async def _at_startup(self, step: Callable[[Store], Awaitable[object]]) -> None:
        """Run a startup step, trying again while MongoDB blinks (up to ``connect_timeout_s``);
        then give up as a startup error (exit 2), not a crash."""
        assert self.store is not None
        deadline = time.monotonic() + self.settings.connect_timeout_s
        while True:
            try:
                await step(self.store)
                return
            except PyMongoError as exc:
                if not is_transient(exc) or time.monotonic() > deadline:
                    raise ConfigError(f"startup failed against MongoDB: {exc}") from exc
                log.warning("startup_step_failed", error=str(exc)[:300], retry_in_s=0.5)
                await anyio.sleep(0.5)

    def _make_dispatcher(self) -> Dispatcher:
        assert self.store is not None
        s = self.settings
        limits = Limits(
            jobs_root=s.jobs_root,
            default_timeout_s=s.job_timeout_s,
            lease_s=s.lease_s,
            heartbeat_s=s.heartbeat_s,
            retry=RetryPolicy(
                max_attempts=s.max_attempts,
                backoff_s=s.retry_backoff_s,
                max_backoff_s=s.retry_max_backoff_s,
            ),
            handler_settings=s.handler_options(),
        )
        return Dispatcher(self.store, self.registry, self.pool, self.metrics, limits,
                          board=self.board, isolation=self.isolation,
                          liveness=self.liveness, outages=self.outages)  # fmt: skip

    async def _start_pool(self) -> Any:
        if not self._cpu_commands:
            return None
        from reactor.pool import CpuPool

        s = self.settings
        pool = CpuPool(
            s.cpu_workers,
            max_tasks_per_worker=s.pool_max_tasks,
            max_rss_mb=s.pool_max_rss_mb,
            log_format=s.log_format,
            log_level=s.log_level,
            log_show_locals=s.log_locals,
            log_max_line_bytes=s.log_max_line_bytes,
        )
        await pool.start()
        return pool

    async def _drain(self) -> None:
        """Let running jobs finish within ``drain_s``; then stop them and hand them back."""
        log.info("reactor_draining", in_flight=self.in_flight, drain_s=self.settings.drain_s)
        with anyio.move_on_after(self.settings.drain_s):
            await self._idle.wait()
        if self.in_flight and not self._forced:
            stopped = self.board.stop_all(Reason.SHUTDOWN)
            log.warning("reactor_handing_back", jobs=stopped)
            with anyio.move_on_after(HAND_BACK_S):
                await self._idle.wait()
        self.calls.shutting_down = True  # what remains (stream, token) gets a second at most

    # -- what the stream says (reactor.stream.Listener) --------------------------------------

    def wake(self, *tiers: Tier) -> None:
        self.tiers.raise_(*tiers)
        self._wake.set()

    def cancel(self, doc_id: Any, request: CancelRequest) -> None:
        if self.board.request(doc_id, request):
            log.info("job_cancel_requested", doc_id=str(doc_id), via=request.via)
            return
        if self._tg is not None and not self.stopping:
            self._tg.start_soon(self._cancel_elsewhere, doc_id, request)

    def due(self, when: datetime) -> None:
        self.delays.offer(when)

    def reopened(self) -> None:
        """The stream (re)opened: indexes again before claiming, then catch up on everything."""
        self._indexes_due = True
        self.delays.forget()
        self.wake(*CLAIM_ORDER)
        if self._tg is not None and not self.stopping:
            self._tg.start_soon(self._ensure_indexes)

    def _mongodb_down(self) -> None:
        self.calls.note_failure()
        self.outages.down()
        log.warning("mongodb_unreachable")

    def _mongodb_up(self) -> None:
        """MongoDB answers again (or for the first time): as after a reopened stream, and no
        reclaims for a lease's length (``_reclaim_allowed``), so owners renew first."""
        self.calls.note_failure()
        self.outages.up()
        log.info("mongodb_reachable")
        self.reopened()

    def _reclaim_allowed(self) -> bool:
        return self.calls.seconds_since_failure() > self.settings.lease_s

    async def _ensure_indexes(self) -> None:
        """Ensure the indexes now, without waiting for a claim (the claim loop may be full)."""
        assert self.store is not None
        try:
            await adopt.ensure_indexes(self.store)
            self._indexes_due = False
        except PyMongoError as exc:  # the claim loop tries again before its next claim
            log.warning("ensure_indexes_failed", error=str(exc)[:300])

    async def _cancel_elsewhere(self, doc_id: Any, request: CancelRequest) -> None:
        """A cancel for a job no live lease holds: claim it to record the cancellation. (A job
        this reactor claimed a moment ago may have reached the board meanwhile: ask again.)"""
        assert self.store is not None
        assert self._dispatcher is not None
        async with self._cancel_slots:
            try:
                job = await self.store.claim_for_cancel(doc_id)
            except PyMongoError as exc:  # the sweep's repair tier will find it
                log.warning("cancel_claim_failed", error=str(exc)[:300])
                self.wake(Tier.REPAIR)
                return
            if job is not None:
                await self._dispatcher.run(job)
            elif self.board.request(doc_id, request):
                log.info("job_cancel_requested", doc_id=str(doc_id), via=request.via)

    # -- the claim loop -----------------------------------------------------------------------

    async def _claim_loop(self, tg: TaskGroup) -> None:
        assert self.store is not None
        claimer = Claimer(self.store, self.tiers, lambda: self.stopping)
        while not self.stopping:
            await self._wake.wait()
            await self._claim_round(tg, claimer)
            if not self.stopping:
                await self.delays.refresh(self.store)

    async def _claim_round(self, tg: TaskGroup, claimer: Claimer) -> None:
        assert self._dispatcher is not None
        while not self.stopping:
            await self._slots.acquire()
            job = await self._claim(claimer)
            if job is None:
                self._slots.release()
                return
            tg.start_soon(self._run_job, job, self._take_slots(job))

    async def _claim(self, claimer: Claimer) -> Job | None:
        assert self.store is not None
        if self.stopping:
            return None
        try:
            if self._indexes_due:
                await adopt.ensure_indexes(self.store)
                self._indexes_due = False
            only = self._cpu_commands if self.isolation.active else None
            job = await claimer.next(
                exclude=self._full_commands(), only=only, reclaim=self._reclaim_allowed()
            )
        except PyMongoError as exc:
            log.warning("claim_failed", error=str(exc)[:300], error_type=type(exc).__name__,
                        retry_in_s=CLAIM_RETRY_S)  # fmt: skip
            self._indexes_due = True
            await anyio.sleep(CLAIM_RETRY_S)
            self._wake.set()
            return None
        finally:
            self.liveness.last_claim = time.monotonic()
        if job is not None and self.stopping:
            await self._hand_back_now(job)  # claimed while the stop came: not ours to start
            return None
        if job is not None and job.reclaimed:
            self.metrics.lease_expiries.inc()
            log.info("job_reclaimed", job_id=job.key, attempt=job.attempt, fence=job.fence)
        return job

    async def _hand_back_now(self, job: Job) -> None:
        assert self.store is not None
        try:
            await self.store.hand_back(job)
            log.info("job_handed_back", job_id=job.key, attempt=job.attempt)
        except (LeaseLost, PyMongoError) as exc:
            log.warning("job_hand_back_failed", job_id=job.key, error=str(exc)[:300])

    def _work_waiting(self) -> bool:
        return self.tiers.any and self._slots.value > 0 and not self.stopping

    def _full_commands(self) -> list[str]:
        full = [name for name, sem in self._handler_slots.items() if sem.value == 0]
        if self._cpu_slots.value == 0:
            full.extend(self._cpu_commands)
        return full

    def _take_slots(self, job: Job) -> list[anyio.Semaphore]:
        held = []
        if isinstance(job.command, str):
            if job.command in self._handler_slots:
                held.append(self._handler_slots[job.command])
            if job.command in self._cpu_commands:
                held.append(self._cpu_slots)
        for sem in held:
            sem.acquire_nowait()  # cannot block: full commands were left out of the claim
        if self.in_flight == 0:
            self._idle = anyio.Event()
        self.in_flight += 1
        self.metrics.in_flight.inc()
        return held

    async def _run_job(self, job: Job, held: list[anyio.Semaphore]) -> None:
        assert self._dispatcher is not None
        try:
            await self._dispatcher.run(job)
        finally:
            for sem in held:
                sem.release()
            self._slots.release()
            self.in_flight -= 1
            if self.in_flight == 0:
                self._idle.set()
            self.metrics.job_done()
            self._wake.set()

    async def _sweep(self) -> None:
        """Leases expire without any event: look for them every ``sweep_s``."""
        while True:
            await anyio.sleep(self.settings.sweep_s)
            self.wake(Tier.REPAIR)

    def seconds_since_stream_progress(self) -> float:
        return self.stream.seconds_since_progress() if self.stream else math.inf
