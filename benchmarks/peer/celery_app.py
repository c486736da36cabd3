"""The peer: a Celery 5 app with Redis as broker and result backend, and the bench's two tasks.

Run by the bench as ``celery -A celery_app worker --pool=prefork --concurrency=2`` with
``BENCH_REDIS_URL`` set. ``task_acks_late``: a message is acknowledged after its task ran, as the
reactor's claim stays until the result is written. Gossip, mingle and heartbeats are off (the
worker command's flags), as is usual for a Redis broker: they only cost the peer time here.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from celery import Celery

REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
MAX_IMAGE_PIXELS = 100_000_000  # the reactor's default REACTOR_MAX_IMAGE_PIXELS

app = Celery("bench_peer", broker=REDIS_URL, backend=REDIS_URL)
app.conf.update(
    task_acks_late=True,
    task_serializer="json",
    result_serializer="json",
    accept_content=["json"],
    broker_connection_retry_on_startup=True,
    worker_hijack_root_logger=False,
)


@app.task(name="echo_stamped")
def echo_stamped(**args: Any) -> dict[str, Any]:
    """The reactor's ``echo_stamped``: the arguments and the monotonic time at the task's start."""
    handler_t = time.monotonic()
    return {**args, "handler_t": handler_t}


@app.task(name="ocr")
def ocr(image: str, workdir: str) -> dict[str, Any]:
    """The reactor's ``ocr`` handler with its default options, through the handler's own code."""
    from reactor_handlers.images import inspect_image, source_from_args
    from reactor_handlers.ocr import OcrOptions, recognize

    source = source_from_args(Path(image), None, None)
    info = inspect_image(source, MAX_IMAGE_PIXELS)
    return recognize(source, info, OcrOptions.checked(), Path(workdir))
