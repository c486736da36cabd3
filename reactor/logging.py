"""structlog set-up: JSON lines for shipping, a console renderer on a terminal.

Every line carries an ISO-8601 UTC ``timestamp``, ``level``, ``logger`` and ``event``; job lines
also carry ``job_id``, ``command`` and ``attempt`` (bound with :func:`bind_job`). Lines are safe
to ship:

* an exception is a structured ``exception`` field (type, message, frames) **without local
  variables**, which would leak job arguments; ``show_locals`` (``REACTOR_LOG_LOCALS``) turns
  them on for debugging;
* a line stays under ``max_line_bytes`` (``REACTOR_LOG_MAX_LINE_BYTES``, 2 KB by default): long
  strings and tracebacks are truncated, noting their original size (:class:`LineCap`).

CPU-pool workers call :func:`configure` too, so their lines reach the same stream with the job's
context and the same limits. Failures are logged through :func:`log_handler_failure` (the job's
own fault: ``warning``) and :func:`log_infrastructure_failure` (ours: ``error``), both with the
fields ``error_type``, ``error`` and the structured ``exception``.
"""

from __future__ import annotations

import importlib.util
import logging
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Literal, TextIO

import structlog

from reactor import joblog
from reactor.log_processors import DEFAULT_MAX_LINE_BYTES, CappedJSONRenderer

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
    log_format: LogFormat = "auto",
    level: str = "info",
    stream: TextIO | None = None,
    *,
    show_locals: bool = False,
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
) -> None:
    """Configure structlog (and stdlib logging, for libraries) once per process.

    Lines go to ``stream``, standard output by default. ``show_locals`` adds each traceback
    frame's local variables (debugging only: they hold job arguments); ``max_line_bytes`` caps
    each JSON line.

    structlog's own lines (the reactor's, a handler's) are rendered by structlog alone and written
    by a :class:`Sink`, skipping stdlib logging: about 10 µs a line instead of 150, and a job
    writes at least two. Libraries' stdlib lines go through a handler that renders them the same.
    """
    fmt = resolve_format(log_format)
    out = joblog.unwrapped(stream or sys.stdout)
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        processors=[*shared, DualRenderer(fmt, show_locals, max_line_bytes)],
        logger_factory=SinkFactory(out),
        wrapper_class=structlog.make_filtering_bound_logger(_LEVELS.get(level, logging.INFO)),
        cache_logger_on_first_use=False,
    )
    handler = JobAwareHandler(
        out,
        _formatter(shared, fmt, show_locals, max_line_bytes),
        _formatter(shared, "json", False, max_line_bytes),
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(_LEVELS.get(level, logging.INFO))
    for noisy in ("pymongo", "uvicorn.access", "uvicorn.error"):  # uvicorn: our http_listening
        logging.getLogger(noisy).setLevel(logging.WARNING)


class DualRenderer:
    """The last processor: the line for the stream and, inside a job, the JSON line for its
    own log (the same line when the stream gets JSON too)."""

    def __init__(self, fmt: str, show_locals: bool, max_line_bytes: int) -> None:
        self._out = _chain(_render(fmt, show_locals, max_line_bytes))
        self._job = None if fmt == "json" else _chain(_render("json", False, max_line_bytes))

    def __call__(self, logger: Any, method_name: str, event_dict: Any) -> Any:
        in_job = joblog.CURRENT.get() is not None
        job_line = None
        if in_job and self._job is not None:
            job_line = self._job(logger, method_name, dict(event_dict))
        line = self._out(logger, method_name, event_dict)
        return (line,), {"job_line": job_line if job_line is not None else line}


def _chain(processors: list[Any]) -> Any:
    def run(logger: Any, method_name: str, event_dict: Any) -> str:
        for processor in processors:
            event_dict = processor(logger, method_name, event_dict)
        return str(event_dict)

    return run


class Sink:
    """Writes structlog's rendered lines: to the stream, and to the running job's own log."""

    def __init__(self, name: str, stream: TextIO, lock: threading.Lock) -> None:
        self.name = name  # the ``logger`` field
        self._stream = stream
        self._lock = lock

    def msg(self, line: str, job_line: str | None = None) -> None:
        with self._lock:
            self._stream.write(line + "\n")
            self._stream.flush()
        if job_line is not None:
            joblog.write_current(job_line)

    debug = info = warning = warn = error = critical = exception = fatal = log = msg


class SinkFactory:
    """structlog's logger factory: a :class:`Sink` named for ``get_logger(name)``, or, when no
    name is given (a handler's ``structlog.get_logger()``), for the calling module."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._lock = threading.Lock()

    def __call__(self, *args: Any) -> Sink:
        name = str(args[0]) if args and args[0] is not None else _caller_module()
        return Sink(name, self._stream, self._lock)


def _caller_module() -> str:
    frame = sys._getframe(1)
    while frame.f_back is not None and str(frame.f_globals.get("__name__", "")).startswith(
        ("structlog", "reactor.logging")
    ):
        frame = frame.f_back
    return str(frame.f_globals.get("__name__", "?"))


def _formatter(
    shared: list[Any], fmt: str, show_locals: bool, max_line_bytes: int
) -> logging.Formatter:
    # A library's stdlib line inside a job carries the job's fields too (merge_contextvars), and
    # a stdlib line's ``extra`` fields are kept (a printed line's ``stream`` and ``text``).
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*shared, structlog.stdlib.ExtraAdder()],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            *_render(fmt, show_locals, max_line_bytes),
        ],
    )


class JobAwareHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes each line to the stream, and as JSON to the running job's own log
    (:mod:`reactor.joblog`) when the line is written inside a job."""

    def __init__(
        self, stream: TextIO, formatter: logging.Formatter, job_formatter: logging.Formatter
    ) -> None:
        super().__init__(stream)
        self.setFormatter(formatter)
        self.job_formatter = job_formatter

    def emit(self, record: logging.LogRecord) -> None:
        super().emit(record)
        if joblog.CURRENT.get() is None:
            return
        try:
            joblog.write_current(self.job_formatter.format(record))
        except Exception:
            self.handleError(record)


def configure_in_host(
    log_format: LogFormat = "auto",
    level: str = "info",
    *,
    show_locals: bool = False,
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
) -> None:
    """Render lines as :func:`configure` does, but hand them to the host's own logging.

    For a reactor inside another program, such as a test run by pytest: each line, already
    rendered (JSON, or console), becomes the message of a stdlib record of its ``logger``, so it
    goes wherever the host's handlers send it (pytest shows it in a failed test's captured log,
    and prints nothing between tests). No handler is added; the ``reactor`` loggers get
    ``level``, the host's handlers keep theirs.
    """
    fmt = resolve_format(log_format)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.stdlib.add_log_level,
            structlog.stdlib.add_logger_name,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            *_render(fmt, show_locals, max_line_bytes),
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )
    logging.getLogger("reactor").setLevel(_LEVELS.get(level, logging.INFO))


def _render(fmt: str, show_locals: bool, max_line_bytes: int) -> list[Any]:
    """The last processors: exceptions as data, the size cap, then the renderer."""
    if fmt == "console":
        return [structlog.dev.ConsoleRenderer(exception_formatter=_console_tracebacks(show_locals))]
    transformer = structlog.tracebacks.ExceptionDictTransformer(
        show_locals=show_locals, use_rich=False
    )
    return [
        structlog.processors.ExceptionRenderer(transformer),
        CappedJSONRenderer(max_line_bytes),
    ]


def _console_tracebacks(show_locals: bool) -> Any:
    """Plain tracebacks for people; with locals through rich, when it is installed."""
    if show_locals and importlib.util.find_spec("rich") is not None:
        return structlog.dev.RichTracebackFormatter(show_locals=True)
    return structlog.dev.plain_traceback


def log_handler_failure(
    log: Any, exc: BaseException, event: str = "job_failed", **fields: Any
) -> None:
    """Log a job that failed by its own fault (its handler raised, bad input) at ``warning``."""
    log.warning(event, **failure_fields(exc), **fields)


def log_infrastructure_failure(log: Any, exc: BaseException, event: str, **fields: Any) -> None:
    """Log a failure of ours (MongoDB, the pool, a bug in the reactor) at ``error``."""
    log.error(event, **failure_fields(exc), **fields)


def failure_fields(exc: BaseException) -> dict[str, Any]:
    """``error_type``, ``error`` and ``exc_info`` (rendered as ``exception``) for ``exc``.

    A failure that crossed from a pool worker keeps its original type name, and its traceback
    text as ``remote_traceback`` (capped like every field).
    """
    cls = type(exc)
    default_type = (
        cls.__qualname__ if cls.__module__ == "builtins" else f"{cls.__module__}.{cls.__qualname__}"
    )
    fields: dict[str, Any] = {
        "error_type": str(getattr(exc, "type_name", None) or default_type).removeprefix(
            "builtins."
        ),
        "error": str(exc) or cls.__name__,
        "exc_info": exc,
    }
    remote = getattr(exc, "remote_traceback", None)
    if remote:
        fields["remote_traceback"] = remote
    return fields


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
