"""Progress reports: ``ctx.progress(fraction, message)`` works wherever the handler runs.

A handler calls :meth:`reactor.JobContext.progress`, which calls :func:`report` here. What
happens next depends on the process: in the reactor, the sink installed by the reactor hands the
report to the job's throttled writer (thread-safe, so thread handlers may call it); in a CPU pool
worker, the pool installs a sink that sends the report over the worker's pipe to the parent,
which hands it to the same writer. Without a sink (a handler called directly, in a unit test)
reports are dropped.
"""

from __future__ import annotations

import math
from collections.abc import Callable

Sink = Callable[[str, float, "str | None"], None]

MESSAGE_MAX_CHARS = 500

_sink: Sink | None = None


def set_sink(sink: Sink | None) -> Sink | None:
    """Install the process's sink (``None`` removes it); returns the one it replaces."""
    global _sink
    previous, _sink = _sink, sink
    return previous


def report(job_id: str, fraction: float, message: str | None = None) -> None:
    """Validate a report and pass it to the sink; ``fraction`` is clamped to ``[0, 1]``."""
    value = check_fraction(fraction)
    text = None if message is None else str(message)[:MESSAGE_MAX_CHARS]
    sink = _sink
    if sink is not None:
        sink(job_id, value, text)


def check_fraction(fraction: float) -> float:
    """``fraction`` as a float in ``[0, 1]``; ``ValueError`` for NaN or a non-number."""
    if isinstance(fraction, bool) or not isinstance(fraction, int | float):
        raise ValueError(f"progress fraction must be a number, got {type(fraction).__name__}")
    value = float(fraction)
    if math.isnan(value):
        raise ValueError("progress fraction must be a number, got NaN")
    return min(1.0, max(0.0, value))
