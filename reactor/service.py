"""Wiring: one task group owns the stream, the claim loop, the sweep, the endpoints and every job.

The claim loop is the only place jobs enter. It takes a global slot *before* claiming, so when
``max_jobs`` are in flight it stops claiming (backpressure) while the stream goes on reading and
coalescing wake-ups into one flag. Commands whose own limit is reached, and CPU commands when
every CPU slot is busy, are left out of the claim query so other work still flows. Each job
releases its slots in ``finally`` and wakes the loop, which pulls the next oldest job.
"""

from __future__ import annotations

import math
from typing import Any

import anyio
from anyio.abc import TaskGroup, TaskStatus
from pymongo import AsyncMongoClient
from pymongo.errors import PyMongoError

from reactor.config import Settings
from reactor.connect import connect
from reactor.dispatch import Dispatcher
from reactor.errors import StoreError
from reactor.handler import Runs
from reactor.logging import get_logger
from reactor.metrics import Metrics
from reactor.model import Job
from reactor.registry import Registry, load_registry
from reactor.store import Store
from reactor.stream import JobStream

log = get_logger("reactor.service")

CLAIM_RETRY_S = 1.0


class Wakeup:
    """A flag that many wake-ups set and one waiter consumes: events coalesce, never queue."""

    def __init__(self) -> None:
        self._event = anyio.Event()
        self.from_event = False

    def set(self, *, from_event: bool = False) -> None:
        self.from_event = self.from_event or from_event
        self._event.set()

    async def wait(self) -> bool:
        """Wait for a wake-up; return whether a stream event was among its causes."""
        await self._event.wait()
        self._event = anyio.Event()
        caused_by_event, self.from_event = self.from_event, False
        return caused_by_event


class Reactor:
    """A running reactor: ``await reactor.serve()`` until :meth:`stop`."""

    def __init__(self, settings: Settings, *, registry: Registry | None = None) -> None:
        self.settings = settings
        self.registry = (
            registry
            if registry is not None
            else load_registry(modules=settings.handler_module_list)
        )
        self.metrics = Metrics()
        self.client: AsyncMongoClient[dict[str, Any]] | None = None
        self.store: Store | None = None
        self.stream: JobStream | None = None
        self.pool: Any = None
        self._wake = Wakeup()
        self._stopping = anyio.Event()
        self._slots = anyio.Semaphore(settings.max_jobs)
        self._cpu_slots = anyio.Semaphore(settings.cpu_workers)
        self._handler_slots = {
            h.name: anyio.Semaphore(h.options.max_concurrency)
            for h in self.registry
            if h.options.max_concurrency
        }
        self._cpu_commands = [h.name for h in self.registry if h.runs is Runs.PROCESS]
        self.in_flight = 0
        self._idle = anyio.Event()
        self._idle.set()

    async def serve(self, *, task_status: TaskStatus[Reactor] = anyio.TASK_STATUS_IGNORED) -> None:
        """Connect, start every task, report started, run until stopped, then drain."""
        self.client = await connect(self.settings)
        try:
            await self._serve(task_status)
        finally:
            with anyio.CancelScope(shield=True):
                if self.pool is not None:
                    await self.pool.aclose()
                await self.client.close()

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    def stop(self) -> None:
        """Stop claiming, let running jobs finish (up to the job timeout), then exit."""
        self._stopping.set()

    async def _serve(self, task_status: TaskStatus[Reactor]) -> None:
        assert self.client is not None
        s = self.settings
        self.store = Store(
            self.client[s.db],
            jobs=s.jobs_collection,
            results=s.results_collection,
            owner=s.worker_name,
            lease_s=s.lease_s,
            result_inline_max_bytes=s.result_inline_max_bytes,
        )
        await self.store.ensure_indexes()
        self.pool = await self._start_pool()
        dispatcher = Dispatcher(
            self.store,
            self.registry,
            self.pool,
            self.metrics,
            jobs_root=s.jobs_root,
            default_timeout_s=s.job_timeout_s,
            max_attempts=s.max_attempts,
            heartbeat_s=s.heartbeat_s,
            handler_settings=s.handler_options(),
        )
        self.stream = JobStream(
            self.store,
            lambda: self._wake.set(from_event=True),
            on_lag=self.metrics.stream_lag.set,
        )
        async with anyio.create_task_group() as tg:
            tg.start_soon(self.stream.run)
            tg.start_soon(self._sweep)
            if s.http_port:
                from reactor.http import serve_http

                await tg.start(serve_http, self, s.http_host, s.http_port)
            tg.start_soon(self._claim_loop, tg, dispatcher)
            log.info(
                "reactor_started",
                worker=s.worker_name,
                db=s.db,
                handlers=self.registry.names(),
                max_jobs=s.max_jobs,
                cpu_workers=s.cpu_workers if self.pool else 0,
            )
            task_status.started(self)
            await self._stopping.wait()
            await self._drain()
            tg.cancel_scope.cancel()
        log.info("reactor_stopped")

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
        )
        await pool.start()
        return pool

    async def _claim_loop(self, tg: TaskGroup, dispatcher: Dispatcher) -> None:
        while not self._stopping.is_set():
            from_event = await self._wake.wait()
            while not self._stopping.is_set():
                await self._slots.acquire()
                job = await self._claim()
                if job is None:
                    self._slots.release()
                    if from_event:
                        self.metrics.claims_lost.inc()
                    break
                from_event = False
                tg.start_soon(self._run_job, dispatcher, job, self._take_slots(job))

    async def _claim(self) -> Job | None:
        assert self.store is not None
        if self._stopping.is_set():
            return None
        try:
            job = await self.store.claim_next(exclude_commands=self._full_commands())
        except PyMongoError as exc:
            log.warning("claim_failed", error=str(exc), retry_in_s=CLAIM_RETRY_S)
            await anyio.sleep(CLAIM_RETRY_S)
            self._wake.set()
            return None
        if job is not None and job.reclaimed:
            self.metrics.lease_expiries.inc()
            log.info("job_reclaimed", job_id=job.key, attempt=job.attempt)
        return job

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
        return held

    async def _run_job(self, dispatcher: Dispatcher, job: Job, held: list[anyio.Semaphore]) -> None:
        try:
            await dispatcher.run(job)
        except (PyMongoError, StoreError) as exc:
            log.error(
                "job_not_recorded",
                job_id=job.key,
                error=str(exc),
                note="MongoDB failed while recording; the lease will expire and re-run it",
            )
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
            self._wake.set()

    async def _drain(self) -> None:
        log.info("reactor_draining", in_flight=self.in_flight)
        with anyio.move_on_after(self.settings.job_timeout_s + self.settings.lease_s):
            await self._idle.wait()

    def seconds_since_stream_progress(self) -> float:
        return self.stream.seconds_since_progress() if self.stream else math.inf
