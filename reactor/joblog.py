"""A job's own log: what its handler logs and prints, kept in the job's directory, bounded.

While a handler runs, :func:`capture` makes its :class:`JobLog` the current one in a context
variable. The log handler of :mod:`reactor.logging` writes every line to standard output as
always (shipped as JSON) and, when a job log is current, appends the same line as JSON to that
file too. Context variables make this right under concurrency: each loop handler runs in its own
task (its own context), anyio's ``to_thread`` runs a thread handler in a copy of the caller's
context, and a CPU-pool worker runs one task at a time and captures around it. ``print`` is
caught by :class:`PrintTee` on ``sys.stdout``/``sys.stderr``: inside a job each printed line
becomes a ``handler_print`` log line with ``stream`` and ``text`` fields (so it reaches both
places as JSON); outside, text passes through untouched. Output a subprocess writes to its own
file descriptors (tesseract's) is not Python's to catch: capture it in the handler and log it.

The file is ``<job directory>/.reactor/run-<run>.log.jsonl``, one per run of the job. It grows
to ``max_bytes`` (``REACTOR_JOB_LOG_MAX_BYTES``); later lines are dropped and one
``job_log_truncated`` line says so. Each line is appended with ``O_APPEND`` by whichever process
writes it (the reactor and a pool worker may both write to one run's file); the size is read from
the file each time, so the bound holds across processes within a line or two.
"""

from __future__ import annotations

import contextvars
import io
import json
import logging
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple, TextIO

LOG_DIR = ".reactor"
READ_MAX_BYTES = 16_000_000  # never read more than this from one file
PRINT_MAX_CHARS = 4000  # of one printed line

CURRENT: contextvars.ContextVar[JobLog | None] = contextvars.ContextVar("job_log", default=None)
_in_print = threading.local()


class Target(NamedTuple):
    """Where a run's log goes and how large it may grow (crosses into pool workers)."""

    path: str
    max_bytes: int


def path_of(workdir: Path, run: int) -> Path:
    """The log file of run ``run`` of the job whose directory is ``workdir``."""
    return workdir / LOG_DIR / f"run-{run}.log.jsonl"


class JobLog:
    """Appends lines to one run's log file, up to its bound."""

    def __init__(self, target: Target) -> None:
        self.path = Path(target.path)
        self.max_bytes = target.max_bytes
        self._lock = threading.Lock()
        self._pending: dict[str, str] = {}  # printed text without its newline yet, by stream
        self._fd: int | None = None  # opened by the first line, closed by :meth:`close`
        self._closed = False
        self.truncated = False

    def write(self, line: str) -> None:
        """Append one rendered line (without its newline), or drop it past the bound."""
        if self.max_bytes <= 0:
            return
        data = (line.rstrip("\n") + "\n").encode("utf-8", "replace")
        with self._lock:
            if self._fd is None:
                try:
                    self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
                except OSError:
                    return  # the directory is gone (cleaned up under us): nothing to keep
            size = os.fstat(self._fd).st_size  # (another process may append to it too)
            if self.truncated or size >= self.max_bytes:
                pass
            elif size + len(data) <= self.max_bytes:
                os.write(self._fd, data)
            else:  # the first line over: say so, once, and keep no later line
                self.truncated = True
                os.write(self._fd, _truncated_note(self.max_bytes))
            if self._closed:  # a line from a thread that outlived its job: no fd kept for it
                self._close_fd()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._close_fd()

    def _close_fd(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def printed(self, stream: str, text: str) -> None:
        """Text a handler printed: each whole line becomes a ``handler_print`` log line, with
        ``stream`` and ``text`` fields (through stdlib logging, so the log handler ships it and
        keeps it here like any other line)."""
        with self._lock:
            buffered = self._pending.get(stream, "") + text
            *lines, rest = buffered.split("\n")
            self._pending[stream] = rest
        for line in lines:
            _log_print(stream, line)

    def flush_prints(self) -> None:
        """Log what was printed without a final newline."""
        with self._lock:
            pending, self._pending = self._pending, {}
        for stream, rest in pending.items():
            if rest:
                _log_print(stream, rest)


_print_logger = logging.getLogger("reactor.handler")


def _log_print(stream: str, text: str) -> None:
    _in_print.active = True  # anything written to a tee meanwhile goes straight out
    try:
        _print_logger.info(
            "handler_print", extra={"stream": stream, "text": text[:PRINT_MAX_CHARS]}
        )
    finally:
        _in_print.active = False


def _truncated_note(max_bytes: int) -> bytes:
    note = {
        "timestamp": datetime.now(UTC).isoformat(),
        "level": "warning",
        "logger": "reactor.joblog",
        "event": "job_log_truncated",
        "max_bytes": max_bytes,
        "note": "later lines are on standard output only",
    }
    return (json.dumps(note) + "\n").encode()


@contextmanager
def capture(target: Target | None) -> Iterator[JobLog | None]:
    """Make ``target`` the current job log inside the block (``None``: capture nothing)."""
    if target is None or target.max_bytes <= 0:
        yield None
        return
    Path(target.path).parent.mkdir(parents=True, exist_ok=True)
    install_print_tee()
    found = JobLog(target)
    token = CURRENT.set(found)
    try:
        yield found
    finally:
        found.flush_prints()
        CURRENT.reset(token)
        found.close()


def write_current(line: str) -> None:
    """Append ``line`` to the current job's log, if there is one (called by the log handler)."""
    found = CURRENT.get()
    if found is not None:
        found.write(line)


class PrintTee(io.TextIOBase):
    """``sys.stdout`` or ``sys.stderr``: a job's prints become its log lines, others pass."""

    def __init__(self, original: TextIO, name: str) -> None:
        self.original = original
        self.name_ = name

    def write(self, text: str) -> int:
        found = CURRENT.get()
        if found is None or getattr(_in_print, "active", False):
            return self.original.write(text)
        found.printed(self.name_, text)
        return len(text)

    def flush(self) -> None:
        self.original.flush()

    def isatty(self) -> bool:
        return self.original.isatty()

    def fileno(self) -> int:
        return self.original.fileno()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return str(getattr(self.original, "encoding", "utf-8"))


def install_print_tee() -> None:
    """Put a :class:`PrintTee` on ``sys.stdout`` and ``sys.stderr`` unless one is there."""
    import sys

    if not isinstance(sys.stdout, PrintTee):
        sys.stdout = PrintTee(sys.stdout, "stdout")
    if not isinstance(sys.stderr, PrintTee):
        sys.stderr = PrintTee(sys.stderr, "stderr")


def unwrapped(stream: TextIO) -> TextIO:
    """The stream under a :class:`PrintTee` (the log handler writes there, never to a tee)."""
    return stream.original if isinstance(stream, PrintTee) else stream


def read_lines(
    path: Path, *, after: int = 0, limit: int = 1000
) -> tuple[list[dict[str, Any]], int]:
    """Up to ``limit`` lines from line number ``after`` on, and the next line number."""
    try:
        with path.open("rb") as f:
            data = f.read(READ_MAX_BYTES)
    except FileNotFoundError:
        return [], after
    rows = data.splitlines()[after : after + limit]
    lines = [_parse(row) for row in rows]
    return lines, after + len(rows)


def _parse(row: bytes) -> dict[str, Any]:
    text = row.decode("utf-8", "replace")
    try:
        value = json.loads(text)
    except ValueError:
        return {"event": "unparsed_line", "text": text}
    return value if isinstance(value, dict) else {"event": "unparsed_line", "text": text}
