"""The cases of ``make bench``: each starts fresh servers, runs work through a client, stops them.

- :func:`reactor_case`, :func:`celery_case`: latency one job at a time, then bursts; CPU per job
  of the worker side (``reactor run`` process trees; the Celery worker and its pool) and of the
  server (the double; Redis) read around each piece of work, and resident memory after it.
- :func:`roundtrip_case`: ``reactor run`` through ``reactor_probe.py``, with idle extra reactors;
  MongoDB commands per job at a trickle (and in a burst with one reactor).
- :func:`drain_case`: a backlog queued before one ``reactor run`` starts.
- :func:`ocr_case`: the same pages through raw ``tesseract``, the reactor, and Celery.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import resource
import shutil
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import bench_ocr
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
IDLE_WINDOW_S = 3.0  # commands sent by idle reactors, counted over this long
COUNT_SETTLE_S = 1.0
STARTUP_TIMEOUT_S = 180.0
STREAM_GETMORE = "getMore(stream)"
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


# -- round trips -------------------------------------------------------------------------------


def roundtrip_case(bench: Bench, extra: int) -> dict[str, Any]:
    """MongoDB commands per job with one reactor and ``extra`` idle ones, at a trickle."""
    folder = bench.folder(f"roundtrips-{1 + extra}")
    double = start_double(folder)
    uri = str(double.extra["uri"])
    counts = [folder / f"counts-{k}.json" for k in range(1 + extra)]
    reactors = [
        start_reactor(f"reactor-{k}", uri, folder / "jobs", folder, counts=path)
        for k, path in enumerate(counts)
    ]
    with running(folder, double, *reactors):
        client = reactor_client(uri, folder)
        try:
            client.call("warmup", n=bench.sizes.warmup, timeout_s=STARTUP_TIMEOUT_S)
            wait_streams(counts, reactors)
            time.sleep(COUNT_SETTLE_S)  # the warm-up's last writes
            idle = idle_rates(counts)
            out: dict[str, Any] = {
                "reactors": 1 + extra,
                "idle_commands_per_s": round(sum(idle.values()) - idle.get(STREAM_GETMORE, 0), 2),
                "idle_by_command_per_s": {k: round(v, 2) for k, v in sorted(idle.items()) if v},
            }
            out["trickle"] = counted(client, counts, "latency", bench.sizes.trickle, idle)
            if extra == 0:
                out["burst"] = counted(client, counts, "burst", bench.sizes.counted_burst, idle)
            return out
        finally:
            client.close()


def read_counts(paths: list[Path]) -> dict[str, int]:
    """The commands every probed reactor has sent so far, by name, summed."""
    total: dict[str, int] = {}
    for path in paths:
        with contextlib.suppress(FileNotFoundError):
            for name, n in json.loads(path.read_text())["counts"].items():
                total[name] = total.get(name, 0) + n
    return total


def wait_streams(paths: list[Path], reactors: list[Service]) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        opened = 0
        for path in paths:
            with contextlib.suppress(FileNotFoundError, ValueError):
                opened += json.loads(path.read_text())["streams_open"] > 0
        if opened == len(paths):
            return
        for reactor in reactors:
            reactor.check_alive()
        time.sleep(0.1)
    raise RuntimeError(f"not every reactor opened its change stream in {STARTUP_TIMEOUT_S} s")


def idle_rates(paths: list[Path]) -> dict[str, float]:
    """Commands per second the reactors send with no job about, by name (heartbeats, sweeps)."""
    before = read_counts(paths)
    time.sleep(IDLE_WINDOW_S)
    after = read_counts(paths)
    return {name: (after[name] - before.get(name, 0)) / IDLE_WINDOW_S for name in after}


def counted(
    client: Client, paths: list[Path], op: str, jobs: int, idle: dict[str, float]
) -> dict[str, Any]:
    """Commands per job while ``op`` runs ``jobs`` jobs, by name; the streams' getMore apart.

    ``net`` figures take off what the reactors would have sent idle over the same window.
    """
    before, started = read_counts(paths), time.monotonic()
    client.call(op, n=jobs)
    time.sleep(COUNT_SETTLE_S)  # the last job's final writes
    after, window_s = read_counts(paths), time.monotonic() - started
    sent = {name: after[name] - before.get(name, 0) for name in after}
    net = {name: n - idle.get(name, 0.0) * window_s for name, n in sent.items()}

    def per_job(counts: dict[str, float]) -> float:
        return round(sum(n for k, n in counts.items() if k != STREAM_GETMORE) / jobs, 3)

    return {
        "jobs": jobs,
        "window_s": round(window_s, 2),
        "round_trips_per_job": per_job(sent),
        "round_trips_per_job_net_of_idle": per_job(net),
        "stream_getmores_per_job": round(sent.get(STREAM_GETMORE, 0) / jobs, 3),
        "by_command": {k: round(n / jobs, 3) for k, n in sorted(sent.items()) if n},
    }


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


# -- OCR ---------------------------------------------------------------------------------------


def ocr_raw(bench: Bench) -> dict[str, Any]:
    out = bench.folder("ocr-raw")
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    wall = bench_ocr.raw_parallel(bench.pages, out)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return _ocr_figures(len(bench.pages), wall, {"tesseract": cpu / len(bench.pages) * 1000})


def ocr_reactor(bench: Bench) -> dict[str, Any]:
    folder, cores = bench.folder("ocr-reactor"), bench_ocr.cores()
    double = start_double(folder)
    uri = str(double.extra["uri"])
    reactor = start_reactor(
        "reactor", uri, folder / "jobs", folder, cpu_workers=str(cores), max_jobs=str(4 * cores)
    )
    with running(folder, double, reactor):
        client = reactor_client(uri, folder)
        try:
            return _ocr_through(bench, client, {"worker": [reactor], "server": [double]}, folder)
        finally:
            client.close()


def ocr_celery(bench: Bench) -> dict[str, Any]:
    folder = bench.folder("ocr-celery")
    redis = start_redis(folder)
    celery = start_celery(str(redis.extra["url"]), folder, concurrency=bench_ocr.cores())
    with running(folder, redis, celery):
        client = celery_client(str(redis.extra["url"]), folder)
        try:
            return _ocr_through(bench, client, {"worker": [celery], "server": [redis]}, folder)
        finally:
            client.close()


def _ocr_through(bench: Bench, client: Client, groups: Groups, folder: Path) -> dict[str, Any]:
    pages, jobs_root = [str(p) for p in bench.pages], str(folder / "jobs")
    warm = pages[: bench_ocr.cores()]  # worker start-up and first imports, not timed
    client.call("ocr", pages=warm, jobs_root=jobs_root, tag="warm")
    run = measured(client, groups, "ocr", len(pages), pages=pages, jobs_root=jobs_root, tag="run")
    return _ocr_figures(len(pages), run["reply"], run["cpu_ms_per_job"])


def _ocr_figures(pages: int, wall_s: float, cpu_ms_per_page: dict[str, float]) -> dict[str, Any]:
    return {
        "pages": pages,
        "wall_s": round(wall_s, 2),
        "pages_per_s": round(pages / wall_s, 3),
        "cpu_ms_per_page": {k: round(v, 1) for k, v in cpu_ms_per_page.items()},
    }


def combine_ocr(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Runs of one way added up: pages over total wall time, CPU per page averaged."""
    pages = sum(r["pages"] for r in runs)
    wall_s = sum(r["wall_s"] for r in runs)
    cpu: dict[str, float] = {}
    for r in runs:
        for key, value in r["cpu_ms_per_page"].items():
            cpu[key] = cpu.get(key, 0.0) + value * r["pages"] / pages
    return {**_ocr_figures(pages, wall_s, cpu), "runs": runs}


OCR_WAYS: dict[str, Callable[[Bench], dict[str, Any]]] = {
    "raw": ocr_raw,
    "reactor": ocr_reactor,
    "celery": ocr_celery,
}
