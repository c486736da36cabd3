"""What a job cost: a CPU-pool job's result carries its CPU time (children included) and its own
memory peak; loop and thread jobs their wall time; the metrics count both per command."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from pymongo.asynchronous.database import AsyncDatabase
from reactor_handlers.ocr import OcrOptions
from reactor_handlers.samples import sample_page

from reactor.client import new_job, wait_for_result, wait_for_results
from reactor.config import Settings
from reactor.pool._worker import THREAD_LIMITS
from reactor.web.health import build_app
from tests.integration import observe_handlers
from tests.integration.reactors import running

Db = AsyncDatabase[dict[str, Any]]


async def test_cpu_time_counts_the_worker_and_its_children(settings: Settings, db: Db) -> None:
    """Half a second of CPU in the worker, and in a child process, both show in cpu_s."""
    async with running(settings, observe_handlers.registry()):
        await db.jobs.insert_many(
            [
                new_job("burn", {"seconds": 0.5}, "own"),
                new_job("child_burn", {"seconds": 0.5}, "kid"),
            ]
        )
        found = await wait_for_results(db, ["own", "kid"], timeout_s=60)
    for result in found.values():
        assert result["status"] == "succeeded", result.get("error")
        assert 0.45 <= result["cpu_s"] < 5
        assert result["wall_s"] >= 0.45
        assert result["max_rss_mb"] > 0


async def test_memory_peak_is_the_jobs_own_not_the_workers_lifetime(
    settings: Settings, db: Db
) -> None:
    """On one worker, a 300 MB job then a 10 MB one: the second reports its own small peak;
    a child's 300 MB (as tesseract's) counts for the job that started it."""
    async with running(settings, observe_handlers.registry(), cpu_workers=1):
        ids = []
        for job_id, command, mb in (("big", "hog", 300), ("small", "hog", 10),
                                    ("child", "child_hog", 300), ("after", "hog", 10)):  # fmt: skip
            await db.jobs.insert_one(new_job(command, {"mb": mb}, job_id))
            await wait_for_result(db, job_id, timeout_s=60)  # one after the other
            ids.append(job_id)
        found = await wait_for_results(db, ids, timeout_s=5)
    peaks = {job_id: found[job_id]["max_rss_mb"] for job_id in ids}
    assert peaks["big"] >= 300
    assert peaks["child"] >= 300
    assert peaks["small"] < 200
    assert peaks["after"] < 200


async def test_loop_and_thread_jobs_carry_wall_time_only(settings: Settings, db: Db) -> None:
    """A loop job's and a thread job's results have wall_s and no cpu_s or max_rss_mb."""
    async with running(settings, observe_handlers.registry()):
        await db.jobs.insert_many(
            [new_job("loud_loop", {"tag": "a"}, "lp"), new_job("loud_thread", {"tag": "b"}, "th")]
        )
        found = await wait_for_results(db, ["lp", "th"], timeout_s=30)
    for result in found.values():
        assert result["wall_s"] >= 0
        assert "cpu_s" not in result
        assert "max_rss_mb" not in result


async def test_costs_are_histograms_per_command(settings: Settings, db: Db) -> None:
    """/metrics has the CPU, memory and wall-time histograms with the job's command.

    A job is counted once its finish is recorded, which may come just after its result is
    readable; the reactor's drain waits for that, so the series are read once it stopped.
    """
    async with running(settings, observe_handlers.registry()) as reactor:
        await db.jobs.insert_one(new_job("burn", {"seconds": 0.05}, "m1"))
        await wait_for_result(db, "m1", timeout_s=60)
    transport = httpx.ASGITransport(app=build_app(reactor.probes()))
    async with httpx.AsyncClient(transport=transport, base_url="http://r") as http:
        text = (await http.get("/metrics")).text
    assert 'reactor_job_cpu_seconds_count{command="burn"} 1.0' in text
    assert 'reactor_job_max_rss_megabytes_count{command="burn"} 1.0' in text
    assert 'reactor_job_wall_seconds_count{command="burn"} 1.0' in text


MEASURE = """
import json, os, subprocess, sys
proc = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
_, status, usage = os.wait4(proc.pid, 0)
print(json.dumps([os.waitstatus_to_exitcode(status), usage.ru_utime + usage.ru_stime,
                  usage.ru_maxrss / 1024]))
"""


def tesseract_cost(page: Path, workdir: Path) -> tuple[float, float]:
    """CPU seconds and peak MB of tesseract reading ``page`` with the ocr handler's command line.

    Measured by wait4 in a small Python process: a child's ``ru_maxrss`` starts at its parent's
    high-water mark (exec keeps it), and this test's process is large.
    """
    config = OcrOptions.checked("eng", 3, 3, None, ()).config()
    command = ["tesseract", str(page), str(workdir / "out"), "-l", "eng", *shlex.split(config)]
    env = {**os.environ, **THREAD_LIMITS}
    out = subprocess.run([sys.executable, "-I", "-c", MEASURE, *command], env=env,
                         capture_output=True, text=True, check=True).stdout  # fmt: skip
    code, cpu_s, peak_mb = json.loads(out)
    assert code == 0
    return cpu_s, peak_mb


@pytest.mark.skipif(shutil.which("tesseract") is None, reason="tesseract is not installed")
async def test_an_ocr_jobs_cost_matches_what_tesseract_costs(
    settings: Settings, db: Db, tmp_path: Path
) -> None:
    """An OCR page's cpu_s and max_rss_mb are those of tesseract reading it (within reason)."""
    page = sample_page()
    cpu_s, peak_mb = tesseract_cost(page, tmp_path)
    async with running(settings):  # the installed handlers
        await db.jobs.insert_one(new_job("ocr", {"image_bytes": page.read_bytes()}, "page"))
        result = await wait_for_result(db, "page", timeout_s=120)
    assert result["status"] == "succeeded", result.get("error")
    assert 0.5 * cpu_s <= result["cpu_s"] <= 3 * cpu_s + 1
    # The job's peak is tesseract's or its worker's, whichever is larger: at least tesseract's,
    # and not a lifetime mark (the worker itself holds well under 200 MB).
    assert 0.9 * peak_mb <= result["max_rss_mb"] <= peak_mb + 200
