"""What crosses between the CPU pool and a worker: the messages, and errors made picklable.

Each worker has two channels to its parent, and one to its watchdog:

* the **task pipe** (a duplex ``multiprocessing`` connection), one message per ``send_bytes``:

  - parent → worker: ``TASK_HEADER`` (the task's sequence number) followed by the pickled
    :data:`Task`; an empty message (``STOP``) asks the worker to exit;
  - worker → parent: a one-byte tag and a body: ``READY`` once after start-up, then for each
    task any number of ``PROGRESS`` messages and finally one ``REPLY``.

* the **control socket** (an ``AF_UNIX`` ``SOCK_SEQPACKET`` pair, one record per packet)
  between the parent and the worker's watchdog process; it is the lifeline: only the parent
  holds its end, so the watchdog reads end-of-file the moment the parent process is gone,
  however it died (and the parent reads end-of-file if the watchdog is gone).

  - parent → watchdog: ``DEADLINE`` records, ``(seq, deadline)``, a task's keep-alive deadline
    on ``time.monotonic()`` (the same clock in every process of the machine);
  - watchdog → parent: one ``STOPPING`` record, ``(why, seq)``, sent just before the watchdog
    kills the worker's process group: ``DEADLINE_PASSED`` for task ``seq``, or
    ``WORKER_GONE`` (``seq`` 0). End-of-file without one: the watchdog itself died.

* the **finished socket** (another such pair) from the worker to its watchdog: one
  ``FINISHED`` record, ``seq``, when a task has returned, before its reply is sent.

Sequence numbers count a worker's tasks from 1, so a late message is never taken for the next
task's.
"""

from __future__ import annotations

import pickle
import struct
import traceback
from collections.abc import Callable, Mapping
from typing import Any, Final, NamedTuple

from reactor import joblog
from reactor.errors import HandlerFailed
from reactor.usage import Usage

STOP: Final = b""
READY: Final = b"S"  # tag: the worker has started up (no body)
REPLY: Final = b"R"  # tag: the body is a pickled Reply
PROGRESS: Final = b"P"  # tag: the body is a pickled Progress

TASK_HEADER: Final = struct.Struct("!Q")
DEADLINE: Final = struct.Struct("!Qd")
STOPPING: Final = struct.Struct("!cQ")
DEADLINE_PASSED: Final = b"D"
WORKER_GONE: Final = b"W"
FINISHED: Final = struct.Struct("!Q")

# fn, kwargs, log context, working directory (None: the worker's own), the job's own log
Task = tuple[
    Callable[..., Any], dict[str, Any], Mapping[str, Any], "str | None", "joblog.Target | None"
]


class Reply(NamedTuple):
    """One task's outcome: a value, or an exception to raise in the parent."""

    ok: bool
    value: Any  # the return value, or a JobError / Retry
    rss_bytes: int  # the worker's resident memory after the task
    left_processes: int = 0  # processes of the task's that outlived it, killed after it
    usage: Usage | None = None  # what the task cost (None: it never ran)


class Progress(NamedTuple):
    """One ``ctx.progress`` report of the task numbered ``seq``."""

    seq: int
    fraction: float
    message: str | None


def encode_progress(report: Progress) -> bytes:
    return PROGRESS + pickle.dumps(tuple(report))


def decode_progress(body: bytes) -> Progress:
    return Progress(*pickle.loads(body))


def handler_failed(message: str, exc: BaseException) -> HandlerFailed:
    """A picklable stand-in for ``exc``, keeping its type name and traceback as text."""
    return HandlerFailed(
        message,
        type_name=type_name(type(exc)),
        remote_traceback="".join(traceback.format_exception(exc)),
    )


def type_name(cls: type) -> str:
    """``module.QualName``, e.g. ``builtins.ValueError``."""
    return f"{cls.__module__}.{cls.__qualname__}"
