"""Prometheus series, one registry per reactor so several can live in one process (tests)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from reactor.model import Status
from reactor.usage import Usage

DURATION_BUCKETS_S = (0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)
RSS_BUCKETS_MB = (16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192)


class Metrics:
    """Counters and gauges the dispatcher and the service update; ``in_flight`` is read from
    admission, the one place that counts running jobs."""

    def __init__(
        self,
        in_flight: Callable[[], float] = lambda: 0,
        clock_skew: Callable[[], float] = lambda: 0.0,
    ) -> None:
        self.registry = CollectorRegistry()
        self._job_series()
        self._state_series(in_flight)
        self.clock_skew = Gauge(
            "reactor_clock_skew_seconds",
            "MongoDB's clock minus this host's, as measured from hello replies (leases use it).",
            registry=self.registry,
        )
        self.clock_skew.set_function(clock_skew)
        self._recovery_series()

    def _job_series(self) -> None:
        r = self.registry
        self.started = Counter(
            "reactor_jobs_started", "Jobs started, by command.", ["command"], registry=r
        )
        self.finished = Counter(
            "reactor_jobs_finished",
            "Jobs finished, by command and status (succeeded, failed, cancelled).",
            ["command", "status"],
            registry=r,
        )
        self.retried = Counter(
            "reactor_jobs_retried",
            "Jobs put back to queued for another attempt, by command.",
            ["command"],
            registry=r,
        )
        self.duration = Histogram(
            "reactor_job_duration_seconds",
            "Time from claim to result, by command.",
            ["command"],
            buckets=DURATION_BUCKETS_S,
            registry=r,
        )
        self._cost_series()
        self.progress = Gauge(
            "reactor_job_progress_ratio",
            "Reported progress (0 to 1) of the jobs this reactor runs, by job_id and command.",
            ["job_id", "command"],
            registry=r,
        )

    def _cost_series(self) -> None:
        """What a job cost: wall time of every job; CPU and memory of a CPU-pool job."""
        r = self.registry
        self.wall = Histogram(
            "reactor_job_wall_seconds",
            "Wall time of the handler's call (one attempt), by command.",
            ["command"],
            buckets=DURATION_BUCKETS_S,
            registry=r,
        )
        self.cpu = Histogram(
            "reactor_job_cpu_seconds",
            "CPU time of a CPU-pool job (its worker and the worker's children), by command.",
            ["command"],
            buckets=DURATION_BUCKETS_S,
            registry=r,
        )
        self.max_rss = Histogram(
            "reactor_job_max_rss_megabytes",
            "Memory peak of a CPU-pool job (its worker or a child, whichever is larger), by "
            "command.",
            ["command"],
            buckets=RSS_BUCKETS_MB,
            registry=r,
        )

    def _state_series(self, in_flight: Callable[[], float]) -> None:
        r = self.registry
        self.queued = Gauge(
            "reactor_jobs_queued", "Jobs waiting to be claimed (all replicas).", registry=r
        )
        self.in_flight = Gauge(
            "reactor_jobs_in_flight", "Jobs this reactor is running.", registry=r
        )
        self.in_flight.set_function(in_flight)
        self.stream_lag = Gauge(
            "reactor_stream_lag_seconds",
            "Delay between a job write and its change event reaching this reactor (last event).",
            registry=r,
        )
        self.token_age = Gauge(
            "reactor_resume_token_age_seconds",
            "Seconds since the change stream last delivered an event or advanced its resume token.",
            registry=r,
        )
        self.unrecorded = Gauge(
            "reactor_outcomes_unrecorded",
            "Finished outcomes this reactor holds until MongoDB takes them.",
            registry=r,
        )
        self.pool_restarts = Gauge(
            "reactor_pool_worker_restarts",
            "CPU worker processes replaced, by reason.",
            ["reason"],
            registry=r,
        )

    def _recovery_series(self) -> None:
        r = self.registry
        self.lease_expiries = Counter(
            "reactor_lease_expiries",
            "Jobs claimed after another owner's lease expired (that owner died or stalled).",
            registry=r,
        )
        self.leases_lost = Counter(
            "reactor_leases_lost",
            "Jobs this reactor stopped because another attempt took them over (fencing).",
            registry=r,
        )
        self.claims_lost = Counter(
            "reactor_claims_lost",
            "Claims after a job event that found nothing: another replica claimed first.",
            registry=r,
        )
        self.record_retries = Counter(
            "reactor_record_retries",
            "Writes of a finished outcome that failed (MongoDB away) and were tried again.",
            registry=r,
        )
        self.adopted = Counter(
            "reactor_jobs_adopted",
            "Jobs without status whose result already existed, adopted instead of re-run.",
            registry=r,
        )
        self.loop_blocked = Counter(
            "reactor_event_loop_blocked",
            "Times the event loop was blocked for a second or more (a loop handler blocking).",
            registry=r,
        )

    # The dispatcher's Observer.
    def job_started(self, command: str) -> None:
        self.started.labels(command).inc()

    def job_finished(self, command: str, status: Status, duration_s: float) -> None:
        self.finished.labels(command, status.value).inc()
        self.duration.labels(command).observe(duration_s)

    def job_cost(self, command: str, usage: Usage) -> None:
        self.wall.labels(command).observe(usage.wall_s)
        if usage.cpu_s is not None:
            self.cpu.labels(command).observe(usage.cpu_s)
        if usage.max_rss_mb is not None:
            self.max_rss.labels(command).observe(usage.max_rss_mb)

    def job_progress(self, job_id: str, command: str, fraction: float) -> None:
        self.progress.labels(job_id, command).set(fraction)

    def job_left(self, job_id: str, command: str) -> None:
        """Forget a job's per-job series once this reactor no longer holds it."""
        with contextlib.suppress(KeyError):
            self.progress.remove(job_id, command)

    def recording(self, delta: int) -> None:
        self.unrecorded.inc(delta)

    def record_retried(self) -> None:
        self.record_retries.inc()

    def job_retried(self, command: str) -> None:
        self.retried.labels(command).inc()

    def lease_lost(self) -> None:
        self.leases_lost.inc()

    def refresh(self, *, token_age_s: float, pool_restarts: Mapping[str, int]) -> None:
        """Update the gauges that are read, not counted."""
        self.token_age.set(token_age_s)
        for reason, count in pool_restarts.items():
            self.pool_restarts.labels(reason).set(count)

    def render(self) -> bytes:
        return generate_latest(self.registry)
