"""Wiring: the running parts, built once, started in one task group, drained on stop.

:class:`Reactor` is what ``reactor run`` (or a test) holds: the settings, the handlers and the
stop switch. :meth:`Reactor.serve` connects and builds a :class:`Service`, whose constructor makes
every part with what it needs; :meth:`Service.run` runs the startup steps, starts the CPU pool and
then every task in one task group: the change stream, the claim loop (the only place jobs enter,
``claim_loop.py``) and the jobs it starts, the timers, the endpoints. An exception nobody expected
ends the task group, and with it the process (crash-only).
"""

from __future__ import annotations

import functools
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import pymongo
from anyio.abc import TaskGroup, TaskStatus
from pymongo import AsyncMongoClient
from pymongo.errors import PyMongoError

from reactor import adopt
from reactor.admission import Admission, Limits, limits_of
from reactor.callbacks.deliverer import Deliverer
from reactor.callbacks.policy import Policy
from reactor.callbacks.store import CallbackStore
from reactor.cancel import CancelBoard
from reactor.cancel_relay import CancelRelay
from reactor.claim_loop import ClaimLoop, Intake
from reactor.claims import Bell
from reactor.clock import ServerClock
from reactor.config import Settings
from reactor.connect import connect
from reactor.connectivity import Connectivity
from reactor.delays import DueTimer
from reactor.dispatch import Dispatcher, JobSettings, Parts, Pool
from reactor.driver import SHUTDOWN_TIMEOUT_S, Calls, install_lock_fix, is_transient
from reactor.errors import ConfigError
from reactor.finisher import Finisher
from reactor.fleet import Heartbeat, member_of
from reactor.handler import Runs
from reactor.indexes import IndexKeeper
from reactor.listener import StreamListener
from reactor.liveness import Liveness, RunningHandlers, Watchdog
from reactor.logging import get_logger
from reactor.metrics import Metrics
from reactor.pool import CpuPool, NoPool
from reactor.queries import QUEUED_TIERS, Tier
from reactor.registry import HandlerDefaults, Registry, load_registry
from reactor.rendezvous import Deferrals, Preference
from reactor.shutdown import Shutdown, drain
from reactor.store import Store
from reactor.strays import StraySweep
from reactor.stream import JobStream
from reactor.web.api import ApiParts, Auth, Tokens
from reactor.web.app import WebParts, build_app
from reactor.web.health import Probes, serve_http
from reactor.workflows import queries as workflow_queries
from reactor.workflows import stream as workflow_stream
from reactor.workflows.advancer import Advancer
from reactor.workflows.store import WorkflowStore

log = get_logger("reactor.service")

Client = AsyncMongoClient[dict[str, Any]]


class Reactor:
    """A reactor to run: ``await reactor.serve()`` until :meth:`stop`."""

    def __init__(
        self, settings: Settings, *, registry: Registry | None = None, exit_on_wedge: bool = False
    ) -> None:
        settings.check_service()
        self.settings = settings
        found = (
            registry
            if registry is not None
            else load_registry(modules=settings.handler_module_list)
        )
        self.registry = found.resolved(HandlerDefaults.of(settings))
        self.shutdown = Shutdown()
        self.exit_on_wedge = exit_on_wedge

    @property
    def stopping(self) -> bool:
        return self.shutdown.requested

    def stop(self, *, force: bool = False) -> None:
        """Stop claiming and drain (``force``: stop at once, hand nothing back)."""
        self.shutdown.request(force=force)

    async def serve(self, *, task_status: TaskStatus[Service] = anyio.TASK_STATUS_IGNORED) -> None:
        """Connect, build the service, run it until stopped; reports the :class:`Service`."""
        install_lock_fix()
        clock = ServerClock()
        connectivity = Connectivity(self.settings.lease_s, now=clock.now)
        client = await connect(self.settings, [connectivity.monitor, clock], clock)
        try:
            await Service(self, client, connectivity, clock).run(task_status)
        finally:
            with anyio.CancelScope(shield=True), pymongo.timeout(SHUTDOWN_TIMEOUT_S):
                await client.close()


class Service:
    """The running parts of one reactor, each built once here."""

    def __init__(
        self, reactor: Reactor, client: Client, connectivity: Connectivity, clock: ServerClock
    ) -> None:
        s = self.settings = reactor.settings
        self.registry, self.shutdown, self.connectivity, self.clock = (
            reactor.registry, reactor.shutdown, connectivity, clock,
        )  # fmt: skip
        self.calls = Calls(connectivity.call_failed)
        self.store = _store(s, client, self.calls, clock)
        self.admission = Admission(_limits(s, self.registry))
        self.metrics = Metrics(
            in_flight=lambda: self.admission.in_flight, clock_skew=lambda: clock.skew_s
        )
        self.pool: CpuPool | NoPool = _pool(s, self.registry)
        self.board = CancelBoard()
        self.bell = Bell()
        self.handlers = RunningHandlers()
        self.finisher = Finisher(self.store, client)
        self.dispatcher = Dispatcher(self._parts(), _job_settings(s))
        self.delays = DueTimer(functools.partial(self.bell.ring, *QUEUED_TIERS), now=clock.now)
        self.indexes = IndexKeeper(self.store)
        self.strays = StraySweep(self.store, every_s=s.stray_sweep_s)
        self.relay = CancelRelay(
            self.store, self.admission, self.board, self.bell, self.dispatcher.run
        )
        self.workflows = WorkflowStore(self.store, workflows=s.workflows_collection,
                                       templates=s.templates_collection)  # fmt: skip
        self.advancer = Advancer(self.workflows, self._serves, grace_s=s.lease_s)
        self.deliverer = Deliverer(CallbackStore(self.store, self.workflows.workflows),
                                   _callback_policy(s), owner=self.store.owner,
                                   grace_s=s.lease_s)  # fmt: skip
        self.preference = Preference(self.store.owner)
        self.deferrals = Deferrals(self.bell.ring, s.claim_grace_s)
        self.listener = StreamListener(self.bell, self.board, self.relay, self.delays,
                                       self.indexes, self.preference, self.deferrals,
                                       self.advancer, self.deliverer)  # fmt: skip
        self.stream = JobStream(self.store, self.listener, on_lag=self.metrics.stream_lag.set)
        self.workflow_stream = workflow_stream.watch(self.store, self.workflows.workflows,
                                                     self.advancer, self.deliverer)  # fmt: skip
        self.claims = ClaimLoop(self._intake())
        self.liveness = self._liveness()
        self.watchdog = Watchdog(self.liveness, exit_on_wedge=reactor.exit_on_wedge,
                                 on_blocked=self.metrics.loop_blocked.inc)  # fmt: skip
        self.heartbeat = self._heartbeat()

    def stop(self, *, force: bool = False) -> None:
        """Stop claiming and drain (``force``: stop at once, hand nothing back)."""
        self.shutdown.request(force=force)

    @property
    def stopping(self) -> bool:
        return self.shutdown.requested

    def _serves(self, command: str) -> bool:
        return self.registry.get(command) is not None

    def _parts(self) -> Parts:
        pool: Pool = self.pool
        return Parts(self.store, self.registry, pool, self.metrics, self.board, self.admission,
                     self.connectivity, self.handlers, self.finisher)  # fmt: skip

    def _intake(self) -> Intake:
        return Intake(self.store, self.bell, self.admission, self.connectivity, self.indexes,
                      self.delays, self.dispatcher, self.shutdown, self.metrics)  # fmt: skip

    def _liveness(self) -> Liveness:
        return Liveness(
            self.settings.liveness_s,
            self.calls,
            self.handlers,
            stream_timeout_s=self.settings.mongo_timeout_s + 1,
            work_waiting=self._work_waiting,
            last_claim=lambda: self.claims.last_claim,
            last_stream_turn=lambda: self.stream.last_turn,
        )

    def _work_waiting(self) -> bool:
        return self.bell.tiers.any and self.admission.has_room and not self.shutdown.requested

    def _heartbeat(self) -> Heartbeat:
        s = self.settings
        member = member_of(self.store.owner, s.worker_name, self.registry.names(), s.max_jobs,
                           self.pool.workers)  # fmt: skip
        return Heartbeat(self.store.db, member, self.calls,
                         in_flight=lambda: self.admission.in_flight,
                         queued=self.store.count_queued, period_s=s.fleet_heartbeat_s,
                         ttl_s=s.fleet_ttl_s, clock=self.store.now,
                         on_fleet=self.preference.update)  # fmt: skip

    def web(self) -> WebParts | None:
        """What the web layer serves besides the probes; ``None`` without an API token."""
        s = self.settings
        if not s.api_enabled:
            return None
        api = ApiParts(self.store.db, self.registry, Auth(Tokens(s.api_token, s.api_read_token)),
                       s.jobs_collection, s.results_collection, s.jobs_root,
                       s.fleet_ttl_s, self.store.now, s.workflows_collection,
                       s.templates_collection)  # fmt: skip
        return WebParts(api, s.api_max_body_bytes, s.ui_secure_cookie, s.api_timeout_s)

    def probes(self) -> Probes:
        return Probes(self.liveness, self.shutdown, self.store, self.stream, self.pool,
                      self.metrics, self.calls, self.settings.ready_stall_s)  # fmt: skip

    # -- running --------------------------------------------------------------------------

    async def run(self, task_status: TaskStatus[Service]) -> None:
        """Startup steps, then every task until the shutdown; then drain."""
        await self._at_startup(adopt.ensure_indexes)
        await self._at_startup(self._adopt)
        await self.pool.start()
        self.watchdog.start()
        try:
            async with anyio.create_task_group() as tg:
                await self._start_tasks(tg)
                self._log_started()
                task_status.started(self)
                await self.shutdown.wait()
                await drain(self.admission, self.board, self.calls,
                            drain_s=self.settings.drain_s, forced=self.shutdown.forced)  # fmt: skip
                tg.cancel_scope.cancel()
        finally:
            self.watchdog.stop()
            self.calls.shutting_down = True
            with anyio.CancelScope(shield=True):
                await self.pool.aclose()
        log.info("reactor_stopped")

    async def _start_tasks(self, tg: TaskGroup) -> None:
        for task in (
            self.liveness.beat,
            self.stream.run,
            self._sweep,
            self.delays.run,
            self.deferrals.run,
            self.indexes.keep,
            self.relay.serve,
            self._catch_up_after_outages,
            self.workflow_stream.run,
            self.advancer.run,
            self.deliverer.run,
            self.strays.run,
            self.finisher.run,
            self.heartbeat.run,
        ):
            tg.start_soon(task)
        tg.start_soon(self._stop_at_once, tg)
        if self.settings.http_port:
            app = build_app(self.probes(), self.web())
            s = self.settings
            await tg.start(serve_http, app, s.http_host, s.http_port)
        tg.start_soon(self.claims.run, tg)

    def _log_started(self) -> None:
        s = self.settings
        log.info("reactor_started", worker=s.worker_name, owner=self.store.owner, db=s.db,
                 handlers=self.registry.names(), max_jobs=s.max_jobs,
                 cpu_workers=self.pool.workers)  # fmt: skip

    async def _adopt(self, store: Store) -> None:
        await adopt.adopt(store, apply=True, on_adopted=self.metrics.adopted.inc)

    async def _at_startup(self, step: Callable[[Store], Awaitable[object]]) -> None:
        """Run a startup step, trying again while MongoDB blinks (up to ``connect_timeout_s``);
        then give up as a startup error (exit 2), not a crash."""
        deadline = time.monotonic() + self.settings.connect_timeout_s
        while True:
            try:
                await step(self.store)
                return
            except PyMongoError as exc:
                if not is_transient(exc) or time.monotonic() > deadline:
                    raise ConfigError(f"startup failed against MongoDB: {exc}") from exc
                log.warning("startup_step_failed", error=str(exc), retry_in_s=0.5)
                await anyio.sleep(0.5)

    async def _sweep(self) -> None:
        """Leases expire without any event: look for them every ``sweep_s``."""
        while True:
            await anyio.sleep(self.settings.sweep_s)
            self.bell.ring(Tier.REPAIR)

    async def _catch_up_after_outages(self) -> None:
        """MongoDB back after an outage: as after a reopened stream (the indexes, every tier)."""
        while True:
            await self.connectivity.wait_back()
            self.listener.reopened()

    async def _stop_at_once(self, tg: TaskGroup) -> None:
        await self.shutdown.wait_forced()
        tg.cancel_scope.cancel()

    def seconds_since_stream_progress(self) -> float:
        return self.stream.seconds_since_progress()


def _store(s: Settings, client: Client, calls: Calls, clock: ServerClock) -> Store:
    more_indexes = {
        s.jobs_collection: workflow_queries.JOB_INDEXES,
        s.workflows_collection: workflow_queries.INDEXES,
        s.templates_collection: workflow_queries.TEMPLATE_INDEXES,
    }
    return Store(
        client[s.db],
        jobs=s.jobs_collection,
        results=s.results_collection,
        owner=f"{s.worker_name}/{uuid.uuid4().hex[:8]}",
        worker=s.worker_name,
        lease_s=s.lease_s,
        result_inline_max_bytes=s.result_inline_max_bytes,
        calls=calls,
        timeout_s=s.mongo_timeout_s,
        clock=clock.now,
        more_indexes=more_indexes,
    )


def _callback_policy(s: Settings) -> Policy:
    return Policy.of(
        secret=s.callback_secret,
        allowed_hosts=s.callback_allowed_hosts,
        timeout_s=s.callback_timeout_s,
        max_attempts=s.callback_max_attempts,
        backoff_s=s.callback_backoff_s,
        max_backoff_s=s.callback_max_backoff_s,
    )


def _limits(s: Settings, registry: Registry) -> Limits:
    return limits_of(
        max_jobs=s.max_jobs,
        cpu_slots=s.cpu_workers,
        handlers=[(h.name, h.runs is Runs.PROCESS, h.options.max_concurrency) for h in registry],
    )


def _pool(s: Settings, registry: Registry) -> CpuPool | NoPool:
    if not any(h.runs is Runs.PROCESS for h in registry):
        return NoPool()
    return CpuPool(
        s.cpu_workers,
        max_tasks_per_worker=s.pool_max_tasks,
        max_rss_mb=s.pool_max_rss_mb,
        log_format=s.log_format,
        log_level=s.log_level,
        log_show_locals=s.log_locals,
        log_max_line_bytes=s.log_max_line_bytes,
    )


def _job_settings(s: Settings) -> JobSettings:
    return JobSettings(
        jobs_root=s.jobs_root,
        lease_s=s.lease_s,
        heartbeat_s=s.heartbeat_s,
        handler_settings=s.handler_options(),
        job_log_max_bytes=s.job_log_max_bytes,
    )
