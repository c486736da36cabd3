"""OCR throughput through the reactor against raw parallel ``tesseract`` processes.

The same pages, rendered from known text at 300 dpi, are OCRed two ways in one run:

- raw: one ``tesseract PAGE out tsv`` process per core at a time, ``OMP_THREAD_LIMIT=1`` (the
  machine's limit for this work);
- reactor: one ``ocr`` job per page through a reactor with ``cpu_workers`` = cores, against the
  double running in its own process (``reactor dev-mongo``), so the CPU time measured for this
  process is the reactor's (and the small client's), not the database's.

Each way runs ``ROUNDS`` times, interleaved; the best round of each is compared. Worker start-up
and first imports are excluded by a warm-up batch.
"""

from __future__ import annotations

import os
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import anyio
from pymongo import AsyncMongoClient
from reactor_handlers.samples import render_page, sample_text

from reactor import workdir
from reactor.client import new_job, wait_for_results
from reactor.config import Settings, load_settings
from reactor.logging import configure
from reactor.service import Reactor

PAGES = 24
ROUNDS = 3


def cores() -> int:
    return len(os.sched_getaffinity(0))


def make_pages(folder: Path, count: int) -> list[Path]:
    """Distinct pages: the sample text, its paragraphs rotated per page."""
    folder.mkdir(parents=True, exist_ok=True)
    paragraphs = [p for p in sample_text().split("\n\n") if p.strip()]
    pages = []
    for i in range(count):
        shift = i % len(paragraphs)
        text = "\n\n".join(paragraphs[shift:] + paragraphs[:shift])
        pages.append(render_page(text, folder / f"page-{i:03}.png"))
    return pages


def raw_parallel(pages: list[Path], out: Path) -> float:
    """Wall seconds for raw tesseract over ``pages``, one process per core at a time."""
    env = {**os.environ, "OMP_THREAD_LIMIT": "1"}

    def one(item: tuple[int, Path]) -> None:
        i, page = item
        subprocess.run(
            ["tesseract", str(page), str(out / f"raw-{i}"), "tsv"],
            env=env,
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=cores()) as executor:  # a core frees, the next starts
        list(executor.map(one, enumerate(pages)))
    return time.perf_counter() - started


async def through_reactor(settings: Settings, pages: list[Path], tag: str) -> tuple[float, float]:
    """Wall seconds for ``pages`` as ocr jobs, and this process's CPU seconds meanwhile."""
    jobs = []
    for i, page in enumerate(pages):
        job = new_job("ocr", {"image": page.name}, f"{tag}-{i}")
        shutil.copy(page, workdir.prepare(settings.jobs_root, job["job_id"]) / page.name)
        jobs.append(job)
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(settings.mongo_uri)
    try:
        db = client[settings.db]
        cpu_before, started = _cpu_s(), time.perf_counter()
        await db.jobs.insert_many(jobs)
        results = await wait_for_results(db, [j["job_id"] for j in jobs], timeout_s=600)
        wall, cpu = time.perf_counter() - started, _cpu_s() - cpu_before
    finally:
        await client.close()
    failed = [r for r in results.values() if r["status"] != "succeeded"]
    if failed:
        raise RuntimeError(f"{len(failed)} OCR jobs failed: {failed[0]['error']}")
    return wall, cpu


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


@contextmanager
def double_process() -> Iterator[str]:
    """``reactor dev-mongo`` in its own process; yields its URI."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "reactor.cli", "dev-mongo", "--port", str(port)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        yield line.strip().split("REACTOR_MONGO_URI=", 1)[1]
    finally:
        proc.terminate()
        proc.wait(timeout=30)


async def measure(root: Path, uri: str) -> dict[str, Any]:
    pages = make_pages(root / "pages", PAGES)
    (root / "raw").mkdir()
    settings = load_settings(
        mongo_uri=uri,
        db="bench_ocr",
        jobs_root=root / "jobs",
        http_port=0,
        cpu_workers=cores(),
        max_jobs=4 * cores(),
        log_level="warning",
    )
    raw_s, reactor_s, reactor_cpu = [], [], []
    async with anyio.create_task_group() as tg:
        reactor = await tg.start(Reactor(settings).serve)
        await through_reactor(settings, pages[: cores()], "warmup")
        for r in range(ROUNDS):
            raw_s.append(raw_parallel(pages, root / "raw"))
            wall, cpu = await through_reactor(settings, pages, f"round{r}")
            reactor_s.append(wall)
            reactor_cpu.append(cpu)
        reactor.stop()
    raw_pps, reactor_pps = PAGES / min(raw_s), PAGES / min(reactor_s)
    return {
        "pages": PAGES,
        "cores": cores(),
        "rounds": ROUNDS,
        "raw_pages_per_s": round(raw_pps, 3),
        "reactor_pages_per_s": round(reactor_pps, 3),
        "ratio": round(reactor_pps / raw_pps, 3),
        "parent_cpu_ms_per_job": round(min(reactor_cpu) / PAGES * 1000, 1),
        "raw_wall_s": [round(s, 2) for s in raw_s],
        "reactor_wall_s": [round(s, 2) for s in reactor_s],
    }


def main() -> dict[str, Any]:
    configure("json", "warning")
    with tempfile.TemporaryDirectory(prefix="bench-ocr-") as tmp, double_process() as uri:
        report = anyio.run(measure, Path(tmp), uri)
    print(
        f"OCR throughput, {report['pages']} pages of 300 dpi text, {report['cores']} cores, "
        f"best of {report['rounds']} interleaved rounds"
    )
    print(f"  raw parallel tesseract: {report['raw_pages_per_s']:.2f} pages/s")
    print(
        f"  through the reactor:    {report['reactor_pages_per_s']:.2f} pages/s "
        f"(ratio {report['ratio']:.2f})"
    )
    print(f"  reactor process CPU per job: {report['parent_cpu_ms_per_job']:.1f} ms")
    return report


if __name__ == "__main__":
    main()
