"""structlog set-up: JSON lines for shipping, a console renderer on a terminal.

Every line carries an ISO-8601 UTC ``timestamp``, ``level``, ``logger`` and ``event``; job lines
also carry ``job_id``, ``command`` and ``attempt`` (bound with :func:`bind_job`). Exceptions
become a structured ``exception`` field. CPU-pool workers call :func:`configure` too, so their
lines reach the same stream with the job's context.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Literal, TextIO

import structlog

LogFormat = Literal["auto", "json", "console"]

_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}


def resolve_format(log_format: LogFormat) -> Literal["json", "console"]:
    """``auto`` means console on a terminal and JSON otherwise."""
    if log_format == "auto":
        return "console" if sys.stdout.isatty() else "json"
    return log_format


def configure(
    log_format: LogFormat = "auto", level: str = "info", stream: TextIO | None = None
) -> None:
    """Configure structlog (and stdlib logging, for libraries) once per process.

    Lines go to ``stream``, standard output by default.
    """
    fmt = resolve_format(log_format)
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: Any
    if fmt == "json":
        shared.append(structlog.processors.dict_tracebacks)
        renderer = structlog.processors.JSONRenderer(default=str)
    else:
        renderer = structlog.dev.ConsoleRenderer()
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared[1:],
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
    )
    handler = logging.StreamHandler(stream or sys.stdout)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(_LEVELS.get(level, logging.INFO))
    for noisy in ("pymongo", "uvicorn.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def get_logger(name: str) -> Any:
    """A structlog logger named ``name`` (the ``logger`` field)."""
    return structlog.get_logger(name)


@contextmanager
def bind_job(job_id: str, command: str, attempt: int, **extra: Any) -> Iterator[None]:
    """Bind the job's context to every log line written inside the block (this task only)."""
    with structlog.contextvars.bound_contextvars(
        job_id=job_id, command=command, attempt=attempt, **extra
    ):
        yield
