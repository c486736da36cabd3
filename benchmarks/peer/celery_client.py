"""The bench's client of the Celery peer (see ``../lineproto.py``), on the peer's interpreter.

    .venv-bench-peer/bin/python benchmarks/peer/celery_client.py REDIS_URL

The same requests as ``reactor_client.py``: tasks are sent with ``apply_async`` one by one (what
a Celery client does; there is no bulk send), results read through the Redis result backend
(``get``, result by result). Latency is ``handler_t`` (read on the task's first line) minus the
monotonic time taken right before the send.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ["BENCH_REDIS_URL"] = sys.argv[1]

from celery_app import echo_stamped, ocr
from lineproto import Progress, serve


def _wait_all(results: list[Any], timeout_s: float) -> list[Any]:
    """Every result, in order, each through ``get`` (``join_native`` lags by about 0.5 s here)."""
    deadline = time.monotonic() + timeout_s
    return [r.get(timeout=max(0.1, deadline - time.monotonic())) for r in results]


def warmup(n: int, timeout_s: float, progress: Progress) -> float:
    started = time.monotonic()
    _wait_all([echo_stamped.apply_async(kwargs={"i": i}) for i in range(n)], timeout_s)
    return time.monotonic() - started


def latency(n: int, progress: Progress) -> dict[str, list[float]]:
    handler_ms, result_ms = [], []
    for i in range(n):
        sent = time.monotonic()
        value = echo_stamped.apply_async(kwargs={"i": i}).get(timeout=60)
        seen = time.monotonic()
        handler_ms.append(round((value["handler_t"] - sent) * 1000, 3))
        result_ms.append(round((seen - sent) * 1000, 3))
    return {"handler_ms": handler_ms, "result_ms": result_ms}


def burst(n: int, progress: Progress) -> dict[str, float]:
    started = time.monotonic()
    _wait_all([echo_stamped.apply_async(kwargs={"i": i}) for i in range(n)], 600)
    return {"jobs": n, "seconds": time.monotonic() - started}


def ocr_pages(pages: list[str], jobs_root: str, tag: str, progress: Progress) -> float:
    """One ``ocr`` task per page, each page copied into a directory of its own; wall seconds."""
    sent = []
    for i, page in enumerate(pages):
        folder = Path(jobs_root) / f"{tag}-{i}"
        folder.mkdir(parents=True)
        sent.append((shutil.copy(page, folder), folder))
    started = time.monotonic()
    _wait_all([ocr.apply_async((str(p), str(f))) for p, f in sent], 900)
    return time.monotonic() - started


if __name__ == "__main__":
    serve({"warmup": warmup, "latency": latency, "burst": burst, "ocr": ocr_pages})
