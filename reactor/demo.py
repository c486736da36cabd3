"""``reactor demo``: the double, one reactor, sample jobs (good and bad), their results, then the
lifecycle tour (``demo_tour``: cancel, re-run, priorities, delay, progress, retry), exit.

Exits 0 when every job ended the way the demo expects (the bad ones must fail, with a message)
and every step of the tour behaved as documented.
"""

from __future__ import annotations

import functools
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
from bson import ObjectId
from pymongo import AsyncMongoClient

from reactor import client, demo_tour, workdir
from reactor.config import Settings, load_settings
from reactor.logging import configure
from reactor.registry import Registry, load_registry
from reactor.service import Reactor

SKEW_DEG = 4.0


@dataclass(frozen=True)
class Sample:
    """A demo job and the status it should end with."""

    doc: dict[str, Any]
    expect: str
    title: str

    @property
    def key(self) -> str:
        return str(self.doc.get("job_id") or self.doc["_id"])


def run_demo(*, samples: bool = True, tour: bool = True) -> int:
    """Run the demo (the sample jobs, then the lifecycle tour); return the exit code."""
    configure("console" if os.isatty(1) else "json", "error")
    from reactor.testing import MongoDouble

    with MongoDouble() as double, tempfile.TemporaryDirectory(prefix="reactor-demo-") as root:
        settings = load_settings(
            mongo_uri=double.uri,
            db="demo",
            jobs_root=root,
            http_port=0,
            log_level="error",
            lease_s=10,
            job_timeout_s=120,
            cpu_workers=min(2, os.cpu_count() or 1),
        )
        return anyio.run(functools.partial(_demo, settings, samples=samples, tour=tour))


async def _demo(settings: Settings, *, samples: bool, tour: bool) -> int:
    registry = Registry([*load_registry(), *demo_tour.handlers()])
    mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(settings.mongo_uri, tz_aware=True)
    code = 0
    try:
        async with anyio.create_task_group() as tg:
            reactor = await tg.start(Reactor(settings, registry=registry).serve)
            db = mongo[settings.db]
            if samples:
                code |= await _samples(db, settings, registry)
            if tour:
                code |= await demo_tour.run_tour(db)
            reactor.stop()
    finally:
        await mongo.close()
    return code


async def _samples(db: Any, settings: Settings, registry: Registry) -> int:
    samples = sample_jobs(settings.jobs_root, registry)
    await db[settings.jobs_collection].insert_many([s.doc for s in samples])
    results = await client.wait_for_results(db, [s.key for s in samples], timeout_s=300)
    return report(samples, results)


def sample_jobs(jobs_root: Path, registry: Registry) -> list[Sample]:
    """The jobs the demo submits: each capability once, and each kind of bad input."""
    samples = [
        Sample(
            {"job_id": "demo-echo", "command": "echo", "args": {"hello": "world"}},
            "succeeded",
            "echo returns its args",
        ),
        Sample(
            {"job_id": "demo-sleep", "command": "sleep", "args": {"seconds": 0.2}},
            "succeeded",
            "sleep on the loop",
        ),
        Sample(
            {"job_id": "demo-unknown", "command": "transmogrify", "args": {}},
            "failed",
            "unknown command",
        ),
        Sample(
            {"job_id": "demo-bad-args", "command": "sleep", "args": {"seconds": "soon"}},
            "failed",
            "args that do not match the handler",
        ),
        Sample(
            {"job_id": "demo-not-mapping", "command": "echo", "args": [1, 2]},
            "failed",
            "args that are not a mapping",
        ),
        Sample(
            {"_id": ObjectId(), "command": "echo", "args": {}},
            "failed",
            "a job without job_id (result keyed by _id)",
        ),
    ]
    if registry.get("ocr") is not None:
        samples += _image_jobs(jobs_root, registry)
    return samples


def _image_jobs(jobs_root: Path, registry: Registry) -> list[Sample]:
    from reactor_handlers import samples as pages

    ocr_dir = workdir.prepare(jobs_root, "demo-ocr")
    (ocr_dir / "page.png").write_bytes(pages.sample_page().read_bytes())
    jobs = [
        Sample(
            {"job_id": "demo-ocr", "command": "ocr", "args": {"image": "page.png"}},
            "succeeded",
            "OCR of the sample page",
        ),
        Sample(
            {"job_id": "demo-escape", "command": "ocr", "args": {"image": "../../etc/passwd"}},
            "failed",
            "a path that escapes the job directory",
        ),
    ]
    if registry.get("prepare") is not None:
        skew_dir = workdir.prepare(jobs_root, "demo-deskew")
        pages.make_skewed(pages.sample_page(), skew_dir / "skewed.png", SKEW_DEG)
        jobs.append(
            Sample(
                {"job_id": "demo-deskew", "command": "prepare", "args": {"image": "skewed.png"}},
                "succeeded",
                f"deskew a copy rotated by {SKEW_DEG:g} degrees",
            )
        )
    return jobs


def report(samples: list[Sample], results: dict[str, dict[str, Any]]) -> int:
    """Print one block per job; return 0 when every job ended as expected."""
    failures = 0
    for sample in samples:
        result = results[sample.key]
        ok = result["status"] == sample.expect
        failures += not ok
        mark = "ok " if ok else "BAD"
        print(
            f"[{mark}] {sample.key}  {result['command']}  -> {result['status']}  ({sample.title})"
        )
        print("      " + _summary(result).replace("\n", "\n      "))
    print(f"\n{len(samples) - failures} of {len(samples)} jobs ended as expected")
    return 1 if failures else 0


def _summary(result: dict[str, Any]) -> str:
    if result["status"] != "succeeded":
        error = result.get("error") or {}
        return f"error {error.get('type')}: {error.get('message')}"
    value = result.get("result")
    if isinstance(value, dict) and "text" in value:
        text = " ".join(str(value["text"]).split())
        return f"text ({value.get('mean_confidence', 0):.0f}% confidence): {text[:300]}"
    if isinstance(value, dict) and "angle_deg" in value:
        angle = float(value["angle_deg"])  # the rotation applied to straighten the page
        return (
            f"measured skew {-angle:+.2f} degrees (straightened by rotating {angle:+.2f}), "
            f"wrote {value.get('output')}"
        )
    return f"result {value!r}"
