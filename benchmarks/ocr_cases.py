"""OCR three ways: the same pages through raw ``tesseract``, the reactor and Celery.

Raw: one ``tesseract`` process per core at a time (``bench_ocr.raw_parallel``). The reactor: one
``reactor run`` with ``cpu_workers`` = cores, its ``ocr`` handler. Celery: a prefork worker with
``--concurrency`` = cores running that handler's code. Each after a warm-up batch, with the CPU
time per page of its process trees.
"""

from __future__ import annotations

import resource
from collections.abc import Callable
from pathlib import Path
from typing import Any

import bench_ocr
from cases import Bench, Groups, celery_client, measured, reactor_client, running
from lineproto import Client
from procs import start_celery, start_double, start_reactor, start_redis


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
