"""``make bench``: mongo-reactor and its peer, Celery 5 + Redis, measured side by side in one run.

    make bench          # the full sizes, 3 interleaved rounds (docs/benchmarks.md says how long)
    make bench-quick    # BENCH_QUICK=1: small sizes, the whole bench end to end in a few minutes

Each round runs every case with fresh servers, in an order rotated from round to round so neither
system always goes first: the reactor with one and with two ``reactor run`` processes against the
double (``reactor dev-mongo``), the Celery peer (a prefork worker, ``--concurrency=2``, Redis as
broker and result backend), OCR three ways, MongoDB round trips per job through reactors that
count their commands, and backlog drains. After the rounds: the ``ocr_document`` workflow, 12
pages against 12 times one page in interleaved rounds of its own (``bench_workflow_ocr``), and
the double's own ceiling and its event latency. Writes ``benchmarks/results.json`` and
``benchmarks/results.md`` (quick mode: ``results-quick.*``), with the machine and what else
loaded it meanwhile.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_double
import bench_event_latency
import bench_ocr
import bench_workflow_ocr
import results_md
import summary
import targets
from cases import Bench, Sizes, celery_case, drain_case, reactor_case
from machine import LoadWatcher, describe, docker_engine
from ocr_cases import OCR_WAYS, combine_ocr
from procs import BENCH, PEER_PYTHON
from roundtrips import roundtrip_case

FULL = Sizes(
    rounds=3,
    warmup=20,
    latency=300,
    bursts=(200, 2_000),
    trickle=200,
    idle_extra=(1, 4, 8),
    counted_burst=2_000,
    drains=(10_000, 20_000),
    ocr_pages=24,
    double_jobs=20_000,
    event_samples=300,
)
QUICK = Sizes(
    rounds=1,
    warmup=10,
    latency=40,
    bursts=(50, 200),
    trickle=20,
    idle_extra=(1, 4, 8),
    counted_burst=200,
    drains=(1_000, 2_000),
    ocr_pages=4,
    double_jobs=2_000,
    event_samples=50,
)
T = TypeVar("T")


def rotated(items: Sequence[T], by: int) -> list[T]:
    return [items[(i + by) % len(items)] for i in range(len(items))]


class Conditions:
    """Per case: its wall time, the load average at its start, the cores others kept busy and
    the cores left idle."""

    def __init__(self, watcher: LoadWatcher) -> None:
        self.watcher = watcher
        self.by_case: dict[str, dict[str, float]] = {}

    def timed(self, label: str, work: Callable[[], T]) -> T:
        load, (others, idle), started = os.getloadavg()[0], self.watcher.others(), time.monotonic()
        result = work()
        wall_s = time.monotonic() - started
        others_after, idle_after = self.watcher.others()
        busy, free = (others_after - others) / wall_s, (idle_after - idle) / wall_s
        self.by_case[label] = {
            "wall_s": round(wall_s, 1),
            "load_1min_at_start": round(load, 2),
            "others_cores_busy": round(busy, 2),
            "idle_cores": round(free, 2),
        }
        print(f"  {label}: {wall_s:.0f} s (others {busy:.2f} cores, idle {free:.2f})", flush=True)
        return result


def run_round(bench: Bench, index: int, watcher: LoadWatcher) -> dict[str, Any]:
    sizes, conditions = bench.sizes, Conditions(watcher)
    timed = conditions.timed
    cases: dict[str, Callable[[], dict[str, Any]]] = {
        "reactor_1": lambda: reactor_case(bench, 1, with_latency=True),
        "celery": lambda: celery_case(bench),
        "reactor_2": lambda: reactor_case(bench, 2, with_latency=False),
    }
    out: dict[str, Any] = {"order": rotated(list(cases), index)}
    for name in out["order"]:
        out[name] = timed(name, cases[name])
    out["ocr"] = ocr_round(bench, rotated(list(OCR_WAYS), index), conditions)
    out["round_trips"] = {
        str(extra): timed(
            f"round trips, {extra} idle extra", lambda e=extra: roundtrip_case(bench, e)
        )
        for extra in (0, *sizes.idle_extra)
    }
    out["drains"] = {
        str(n): timed(f"drain {n}", lambda n=n: drain_case(bench, n))
        for n in rotated(sizes.drains, index)
    }
    out["conditions"] = conditions.by_case
    return out


def ocr_round(bench: Bench, order: list[str], conditions: Conditions) -> dict[str, Any]:
    """Each way twice, in ``order`` and then reversed (A B C C B A), so a load that rises or
    falls during the round weighs on every way alike; each way's two runs are added up."""
    runs: dict[str, list[dict[str, Any]]] = {way: [] for way in order}
    for i, way in enumerate([*order, *reversed(order)]):
        label = f"ocr {way} {i // len(order) + 1}"
        runs[way].append(conditions.timed(label, lambda w=way: OCR_WAYS[w](bench)))
    return {"order": order, **{way: combine_ocr(pair) for way, pair in runs.items()}}


def double_figures(sizes: Sizes, watcher: LoadWatcher) -> dict[str, Any]:
    """The double alone: its ceiling (``bench_double``) and its event latency while claiming."""
    timed = Conditions(watcher).timed
    bench_double.JOBS = sizes.double_jobs
    ceiling = timed("double ceiling", bench_double.main)
    samples = ["--samples", str(sizes.event_samples), "--double", "process"]
    finished = (1_000,) if sizes.double_jobs < 20_000 else (1_000, 20_000)
    events = [
        timed(
            f"event latency, {n} finished",
            lambda n=n: bench_event_latency.main([*samples, "--finished", str(n)]),
        )
        for n in finished
    ]
    return {"double_ceiling": ceiling, "event_latency_while_claiming": events}


def replica_set_note() -> str:
    if not docker_engine():
        return (
            "skipped: no Docker engine on this machine, so every reactor figure ran on the double"
        )
    return (
        "skipped: a Docker engine is present, but the replica-set leg of the bench is not built yet"
    )


def preflight() -> None:
    """The peer's interpreter, redis-server and tesseract, or a message saying how to get them."""
    missing = [tool for tool in ("redis-server", "tesseract") if shutil.which(tool) is None]
    probe = [str(PEER_PYTHON), "-c", "import celery, redis, reactor_handlers"]
    if not PEER_PYTHON.exists() or subprocess.run(probe, capture_output=True).returncode != 0:
        missing.append(f"the peer's virtual environment ({PEER_PYTHON.parent.parent})")
    if missing:
        sys.exit(f"bench: missing {', '.join(missing)}; `make bench` installs them")


def run_all(sizes: Sizes, scratch: Path, watcher: LoadWatcher) -> dict[str, Any]:
    pages = bench_ocr.make_pages(scratch / "pages", sizes.ocr_pages)
    bench = Bench(sizes, scratch, pages)
    rounds = []
    for index in range(sizes.rounds):
        print(f"round {index + 1} of {sizes.rounds}", flush=True)
        rounds.append(run_round(bench, index, watcher))
    bench_workflow_ocr.ROUNDS = sizes.rounds
    workflow = Conditions(watcher).timed("workflow ocr_document", bench_workflow_ocr.main)
    return {
        "rounds": rounds,
        "workflow_ocr": workflow,
        **double_figures(sizes, watcher),
        "real_replica_set": replica_set_note(),
    }


def main() -> None:
    quick = os.environ.get("BENCH_QUICK", "") not in ("", "0")
    sizes = QUICK if quick else FULL
    preflight()
    started_at, started = datetime.now(UTC), time.monotonic()
    watcher = LoadWatcher().start()
    scratch = Path(tempfile.mkdtemp(prefix="bench-"))
    try:
        measured = run_all(sizes, scratch, watcher)
    except BaseException:
        print(f"bench failed; the servers' logs are kept in {scratch}", file=sys.stderr)
        raise
    shutil.rmtree(scratch)
    results: dict[str, Any] = {
        "mode": "quick" if quick else "full",
        "command": "make bench-quick" if quick else "make bench",
        "started_at": started_at.isoformat(timespec="seconds"),
        "duration_s": round(time.monotonic() - started),
        "machine": describe(),
        "load": watcher.stop(),
        "sizes": asdict(sizes),
        **measured,
    }
    results["summary"] = summary.summarize(results)
    results["summary"]["targets"] = targets.targets(results["summary"])
    stem = "results-quick" if quick else "results"
    (BENCH / f"{stem}.json").write_text(json.dumps(results, indent=2, default=str) + "\n")
    (BENCH / f"{stem}.md").write_text(results_md.markdown(results))
    print(results_md.side_by_side(results["summary"]))
    print(f"written: benchmarks/{stem}.json, benchmarks/{stem}.md ({results['duration_s']} s)")


if __name__ == "__main__":
    main()
