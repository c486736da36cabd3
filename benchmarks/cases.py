"""The cases of ``make bench``: each starts fresh servers, runs work through a client, stops them.

- :func:`reactor_case`, :func:`celery_case`: latency one job at a time, then bursts; CPU per job
  of the worker side (``reactor run`` process trees; the Celery worker and its pool) and of the
  server (the double; Redis) read around each piece of work, and resident memory after it.
- :func:`drain_case`: a backlog queued before one ``reactor run`` starts.

The round-trip cases are in ``roundtrips.py``, the OCR cases in ``ocr_cases.py``.
"""

from __future__ import annotations

import contextlib
import itertools
import shutil
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lineproto import Client
from procs import (
    BENCH,
    PEER_PYTHON,
    Service,
    start_celery,
    start_double,
    start_reactor,
    start_redis,
)

SETTLE_S = 0.3  # after the last result: the reactor's final status writes, Celery's acks
IDLE_S = 1.0
STARTUP_TIMEOUT_S = 180.0
Groups = dict[
    str, list[Service]
]  # "worker": reactors or the Celery worker; "server": double, Redis


@dataclass(frozen=True)
class Sizes:
    rounds: int
    warmup: int
    latency: int
    bursts: tuple[int, ...]
    trickle: int
    idle_extra: tuple[int, ...]
    counted_burst: int
    drains: tuple[int, ...]
    ocr_pages: int
    double_jobs: int
    event_samples: int


@dataclass
class Bench:
    sizes: Sizes
    root: Path
    pages: list[Path]

    def __post_init__(self) -> None:
        self._serial = itertools.count(1)

    def folder(self, name: str) -> Path:
        """A fresh folder for one case: its servers' logs and job directories."""
        path = self.root / f"{next(self._serial):03}-{name}"
        path.mkdir(parents=True)
        return path


@contextlib.contextmanager
def running(folder: Path, *services: Service) -> Iterator[None]:
    """Stop ``services`` by PID when the case ends, then delete its job directories.

    A drain leaves one directory per job; removing them case by case keeps the scratch folder
    small (one rmtree of every round's 100,000 directories at the end took minutes under load).
    """
    try:
        yield
    finally:
        for service in reversed(services):
            service.stop()
        shutil.rmtree(folder / "jobs", ignore_errors=True)


def reactor_client(uri: str, folder: Path) -> Client:
    return Client([sys.executable, str(BENCH / "reactor_client.py"), uri], folder / "client.log")


def celery_client(redis_url: str, folder: Path) -> Client:
    argv = [str(PEER_PYTHON), str(BENCH / "peer" / "celery_client.py"), redis_url]
    return Client(argv, folder / "client.log")


def reactor_case(bench: Bench, processes: int, with_latency: bool) -> dict[str, Any]:
    folder = bench.folder(f"reactor-{processes}")
    double = start_double(folder)
    uri = str(double.extra["uri"])
    reactors = [
        start_reactor(f"reactor-{k}", uri, folder / "jobs", folder) for k in range(processes)
    ]
    with running(folder, double, *reactors):
        client = reactor_client(uri, folder)
        try:
            return run_case(bench, client, {"worker": reactors, "server": [double]}, with_latency)
        finally:
            client.close()


def celery_case(bench: Bench) -> dict[str, Any]:
    folder = bench.folder("celery")
    redis = start_redis(folder)
    celery = start_celery(str(redis.extra["url"]), folder)
    with running(folder, redis, celery):
        client = celery_client(str(redis.extra["url"]), folder)
        try:
            return run_case(bench, client, {"worker": [celery], "server": [redis]}, True)
        finally:
            client.close()


def run_case(bench: Bench, client: Client, groups: Groups, with_latency: bool) -> dict[str, Any]:
    sizes = bench.sizes
    out: dict[str, Any] = {
        "warmup_s": client.call("warmup", n=sizes.warmup, timeout_s=STARTUP_TIMEOUT_S)
    }
    out["idle"] = idle(groups)
    if with_latency:
        out["latency"] = measured(client, groups, "latency", sizes.latency, n=sizes.latency)
    out["bursts"] = {str(n): measured(client, groups, "burst", n, n=n) for n in sizes.bursts}
    return out


def cpu_by_group(groups: Groups) -> dict[str, float]:
    return {name: sum(s.cpu_s() for s in services) for name, services in groups.items()}


def memory(services: list[Service]) -> dict[str, Any]:
    """Each main process's resident memory, and the total of their trees (pool processes)."""
    return {
        "main_mb": [round(s.rss_mb(), 1) for s in services],
        "tree_mb": round(sum(s.tree_rss_mb() for s in services), 1),
    }


def idle(groups: Groups) -> dict[str, Any]:
    before = cpu_by_group(groups)
    time.sleep(IDLE_S)
    after = cpu_by_group(groups)
    cpu = {g: round((after[g] - before[g]) / IDLE_S * 1000, 2) for g in groups}
    return {"cpu_ms_per_s": cpu, "rss": memory(groups["worker"])}


def measured(
    client: Client, groups: Groups, op: str, jobs: int, **arguments: Any
) -> dict[str, Any]:
    """``op`` through the client, with each group's CPU per job and the workers' memory after."""
    before = cpu_by_group(groups)
    reply = client.call(op, **arguments)
    time.sleep(SETTLE_S)
    for service in itertools.chain(*groups.values()):
        service.check_alive()
    after = cpu_by_group(groups)
    cpu = {g: round((after[g] - before[g]) / jobs * 1000, 3) for g in groups}
    return {"reply": reply, "cpu_ms_per_job": cpu, "rss": memory(groups["worker"])}


# -- backlog drain -----------------------------------------------------------------------------


def drain_case(bench: Bench, jobs: int) -> dict[str, Any]:
    """``jobs`` queued, then one ``reactor run`` started; resident memory as results arrive."""
    folder = bench.folder(f"drain-{jobs}")
    double = start_double(folder)
    uri = str(double.extra["uri"])
    with running(folder, double):
        client = reactor_client(uri, folder)
        try:
            job_ids = client.call("queue", n=jobs)
            started = time.monotonic()
            reactor = start_reactor("reactor", uri, folder / "jobs", folder)
            with running(folder, reactor):
                return _drained(client, reactor, double, job_ids, started)
        finally:
            client.close()


def _drained(
    client: Client, reactor: Service, double: Service, job_ids: list[str], started: float
) -> dict[str, Any]:
    jobs = len(job_ids)
    marks = sorted({1, *(m for m in (1_000, 10_000, 20_000) if m < jobs), jobs})
    samples: dict[int, dict[str, float]] = {}

    def sample(results: int, at_s: float) -> None:
        samples[results] = {
            "at_s": at_s,
            "rss_mb": reactor.rss_mb(),
            "cpu_s": reactor.cpu_s(),
            "double_cpu_s": double.cpu_s(),
        }

    reply = client.call("await_results", sample, job_ids=job_ids, since=started, marks=marks)
    time.sleep(SETTLE_S)
    reactor.check_alive()
    first, after = samples[1], {"cpu_s": reactor.cpu_s(), "double_cpu_s": double.cpu_s()}
    per_job = {k: round((after[k] - first[k]) / max(1, jobs - 1) * 1000, 3) for k in after}
    return {
        "jobs": jobs,
        "seconds": round(reply["last_s"], 2),
        "first_result_s": round(reply["first_s"], 2),
        "jobs_per_s_after_first": round((jobs - 1) / (reply["last_s"] - reply["first_s"]), 1),
        "cpu_ms_per_job_after_first": {
            "worker": per_job["cpu_s"],
            "server": per_job["double_cpu_s"],
        },
        "rss_mb_at": {str(k): round(v["rss_mb"], 1) for k, v in samples.items()},
        "rss_mb_after": round(reactor.rss_mb(), 1),
    }
