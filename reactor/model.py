"""Jobs, results and statuses: the MongoDB document shapes (filters and updates: ``queries.py``).

A job as clients write it::

    {"job_id": "<unique string>", "command": "<handler name>", "args": {...},
     "priority": 0, "run_at": <date>, "cancel_requested": true,      # optional
     "callback_url": "https://..."}                                  # optional

Fields the reactor manages on the job: ``status`` (absent or null means queued), ``run``,
``attempt``, ``fence``, ``lease_owner``, ``lease_expires_at``, ``created_at``, ``started_at``,
``finished_at``, ``progress``, ``errors``, ``isolated``, ``cancelled_at``, ``cancelled_via``,
``adopted_at``, ``callback`` (its delivery, ``reactor.callbacks.model``); on a workflow's step
job also ``workflow`` (the link, written when the step job is created) and ``step_final``
(``reactor.workflows.model``). A result, one per job, keyed by ``job_id`` (or the job's ``_id``
when the job has none) and replaced by each run's::

    {"job_id", "job_doc_id", "command", "status", "result" | "error": {type, message, traceback,
     retryable}, "run", "attempt", "errors", "history", "worker", "started_at", "finished_at",
     "duration_ms", "handler", "handler_version", "fence"}
"""

from __future__ import annotations

import math
import re
import traceback as tb
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import bson
from bson import ObjectId

from reactor.errors import HandlerFailed, JobError, ResultNotStorable


class Status(StrEnum):
    """A job's state. A job document without ``status`` (or with ``null``) is queued."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


TERMINAL_STATUSES = frozenset({Status.SUCCEEDED, Status.FAILED, Status.CANCELLED})
STATUS_VALUES = tuple(s.value for s in Status)

# Field names, in one place.
ID = "_id"
JOB_ID = "job_id"
COMMAND = "command"
ARGS = "args"
STATUS = "status"
ATTEMPT = "attempt"
LEASE_OWNER = "lease_owner"
LEASE_EXPIRES_AT = "lease_expires_at"
CREATED_AT = "created_at"
STARTED_AT = "started_at"
FINISHED_AT = "finished_at"
RUN = "run"  # which run of the job (a re-run starts the next), 1-based; absent means 1
FENCE = "fence"  # the claim count: +1 on every claim (a client's replace starts it again)
CLAIM_ID = "claim_id"  # unique to one claim, never repeated: checked with the fence on every write
LEASE_RELEASED_AT = "lease_released_at"  # a re-queued running job's lease given up: claim it again
PRIORITY = "priority"  # higher runs first; absent means 0
RUN_AT = "run_at"  # not started before this date
CANCEL_REQUESTED = "cancel_requested"
CANCEL_REQUESTED_AT = "cancel_requested_at"
CANCELLED_AT = "cancelled_at"
CANCELLED_VIA = "cancelled_via"  # "cancel_requested" or "status": how the cancel was asked for
PROGRESS = "progress"  # {fraction, message, updated_at}
ISOLATED = "isolated"  # a reclaimed job running alone: its reactor dying now makes it poison
ERRORS = "errors"  # this run's unsuccessful attempts, Retry too: [{attempt, type, message, at}]
ADOPTED_AT = "adopted_at"
CALLBACK_URL = "callback_url"  # POST the result there when the job ends (reactor.callbacks)
WORKFLOW = "workflow"  # a step job's link to its workflow (reactor.workflows.model)
# Result fields beyond the job's.
RESULT = "result"
ERROR = "error"
HISTORY = "history"  # earlier runs: [{run, status, attempts, error_type, finished_at}]
JOB_DOC_ID = "job_doc_id"
CLAIMED_AT = "claimed_at"  # the server time of the claim that wrote a result

MAX_ATTEMPT = 1_000_000  # an attempt number above this is a malformed document
HISTORY_MAX = 20  # earlier runs kept on a result
ERRORS_MAX = 20  # failed attempts kept per run
MESSAGE_MAX_CHARS = 4_000  # of an error message, in a result
TRACEBACK_MAX_CHARS = 16_000  # of a traceback, in a result
SUMMARY_MAX_CHARS = 500  # of a message in ``errors``


@dataclass(frozen=True)
class CancelRequest:
    """A cancellation asked for through the document: which field, and when (if known)."""

    via: str  # "cancel_requested" or "status"
    requested_at: datetime | None = None


@dataclass(frozen=True)
class Job:
    """A claimed job as the dispatcher sees it. ``command`` and ``args`` are unchecked here."""

    doc_id: Any
    key: str  # job_id, or str(_id) when the document has none
    has_job_id: bool
    command: Any
    args: Any
    fence: int
    run: int
    attempt: int
    owner: str
    started_at: datetime
    rerun: bool = False  # the claim starts a new run (the job had finished before)
    reclaimed: bool = False  # an earlier execution of this attempt may have started (it died)
    poison: bool = False  # reclaimed although it already ran alone: its reactor died under it
    cancel: CancelRequest | None = None
    problem: str | None = None  # why the document is malformed, for InvalidJob
    errors: tuple[dict[str, Any], ...] = ()  # this run's failed attempts so far
    claimed_at: float = 0.0  # time.monotonic() when the claim was sent: the lease runs from it
    expired_lease: datetime | None = None  # a reclaim: when the dead claim's lease ran out
    claim_id: Any = None  # this claim's unique id (an ObjectId): no other claim ever has it
    workflow: Any = None  # a step job's link to its workflow, unchecked (``workflow`` field)
    callback_url: Any = None  # where to POST the result when the job ends, unchecked

    @classmethod
    def from_claim(
        cls,
        before: Mapping[str, Any],
        owner: str,
        now: datetime,
        claimed_at: float = 0.0,
        claim_id: Any = None,
    ) -> Job:
        """The job as the claim left it, from the document as it was just before the claim."""
        status = before.get(STATUS)
        rerun = status in (None, Status.QUEUED.value, Status.RUNNING.value) and (
            before.get(FINISHED_AT) is not None
        )
        reclaimed = status == Status.RUNNING.value and not rerun
        job_id = before.get(JOB_ID)
        key = job_id if isinstance(job_id, str) and job_id else None
        problem = document_problem(before)
        errors = before.get(ERRORS)
        return cls(
            doc_id=before[ID],
            key=key if key is not None else str(before[ID]),
            has_job_id=key is not None,
            command=before.get(COMMAND),
            args=before.get(ARGS, {}),
            fence=_int_or(before.get(FENCE), 0) + 1,
            run=max(1, _int_or(before.get(RUN), 1)) + (1 if rerun else 0),
            attempt=1 if rerun or problem else max(1, _int_or(before.get(ATTEMPT), 1)),
            owner=owner,
            started_at=now,
            rerun=rerun,
            reclaimed=reclaimed,
            poison=reclaimed and before.get(ISOLATED) is True,
            cancel=cancel_request(before),
            problem=problem,
            errors=() if rerun or not isinstance(errors, list) else tuple(errors[-ERRORS_MAX:]),
            claimed_at=claimed_at,
            expired_lease=_date_or_none(before.get(LEASE_EXPIRES_AT)) if reclaimed else None,
            claim_id=claim_id,
            workflow=before.get(WORKFLOW),
            callback_url=before.get(CALLBACK_URL),
        )

    @classmethod
    def from_batch_claim(
        cls,
        after: Mapping[str, Any],
        attempt: Any,
        owner: str,
        now: datetime,
        claimed_at: float,
        claim_id: Any,
    ) -> Job:
        """A job of a batch claim, from the document as the claim left it and its ``attempt``
        as it was before (a batch takes only queued jobs no claim held, so the rest of what it
        was before follows from what it is now)."""
        before = {**after, STATUS: None, FENCE: _int_or(after.get(FENCE), 1) - 1,
                  ATTEMPT: attempt, LEASE_OWNER: None, LEASE_EXPIRES_AT: None}  # fmt: skip
        return cls.from_claim(before, owner, now, claimed_at=claimed_at, claim_id=claim_id)

    @property
    def command_name(self) -> str:
        """The command as a string for logs and results, whatever the document held."""
        return self.command if isinstance(self.command, str) else repr(self.command)


def cancel_request(doc: Mapping[str, Any]) -> CancelRequest | None:
    """The cancellation a document asks for, if any."""
    requested_at = doc.get(CANCEL_REQUESTED_AT)
    when = requested_at if isinstance(requested_at, datetime) else None
    if doc.get(CANCEL_REQUESTED) is True:
        return CancelRequest("cancel_requested", when)
    if doc.get(STATUS) == Status.CANCELLED.value:
        return CancelRequest("status", when)
    return None


# The one priority rule: the document check, ``reactor submit --priority`` and the client use it.
PRIORITY_RULE = "an integer or a double such as 5, -1 or 2.5; higher runs first, absent counts as 0"


def priority_problem(value: Any) -> str | None:
    """Why ``value`` is not a priority (any finite number), or ``None`` when it is one."""
    if is_priority(value):
        return None
    return f"priority {value!r} is not a finite number ({PRIORITY_RULE})"


def document_problem(doc: Mapping[str, Any]) -> str | None:
    """What is wrong with the reactor-read fields of a job document, or ``None``.

    A missing ``job_id`` or ``command`` is left to the dispatcher ("job has no ..."); one of the
    wrong type is named here with the type it has.
    """
    job_id = doc.get(JOB_ID)
    if job_id is not None and not _name(job_id):
        return (
            f"job_id {job_id!r} is {type_phrase(job_id)}, not a non-empty string; its result is "
            f"keyed by its _id {doc.get(ID)}"
        )
    command = doc.get(COMMAND)
    if command is not None and not _name(command):
        return (
            f"command {command!r} is {type_phrase(command)}, not a non-empty string (the name "
            "of a handler)"
        )
    status = doc.get(STATUS)
    if status is not None and status not in STATUS_VALUES:
        accepted = ", ".join(STATUS_VALUES)
        return f"status {status!r} is not one of: {accepted} (or absent for queued)"
    for name in (ATTEMPT, RUN):
        value = doc.get(name)
        if value is not None and _count(value) is None:
            return f"{name} {value!r} is not a whole number from 0 to {MAX_ATTEMPT:,}"
    priority = doc.get(PRIORITY)
    if priority is not None and (problem := priority_problem(priority)) is not None:
        return problem
    run_at = doc.get(RUN_AT)
    if run_at is not None and not isinstance(run_at, datetime):
        return f"run_at {run_at!r} is not a date (use a BSON date, e.g. a Python datetime)"
    flag = doc.get(CANCEL_REQUESTED)
    if flag is not None and not isinstance(flag, bool):
        return f"cancel_requested {flag!r} is not true or false"
    return None


def _whole(value: Any) -> int | None:
    """``value`` as a whole number (an int, or a float with no fraction), or ``None``."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if isinstance(value, float) and (not math.isfinite(value) or not value.is_integer()):
        return None
    return int(value)


def _count(value: Any) -> int | None:
    """``value`` as a whole number in ``[0, MAX_ATTEMPT]``, or ``None``."""
    number = _whole(value)
    return number if number is not None and 0 <= number <= MAX_ATTEMPT else None


def _int_or(value: Any, default: int) -> int:
    number = _whole(value)
    return default if number is None else number


def is_priority(value: Any) -> bool:
    """A usable priority (:data:`PRIORITY_RULE`): a finite int or float, not a boolean."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return not (isinstance(value, float) and not math.isfinite(value))


def _name(value: Any) -> bool:
    return isinstance(value, str) and bool(value)


_TYPE_PHRASES: dict[type, str] = {
    bool: "a boolean",
    int: "an integer",
    float: "a double",
    str: "an empty string",
    list: "a list",
    dict: "a mapping",
}


def type_phrase(value: Any) -> str:
    """What a field holds, for messages: ``an integer``, ``a list``, ``a ObjectId``..."""
    for kind, phrase in _TYPE_PHRASES.items():
        if isinstance(value, kind):
            return phrase
    name = type(value).__name__
    return f"{'an' if name[:1].lower() in 'aeiou' else 'a'} {name}"


@dataclass(frozen=True)
class ErrorInfo:
    """A failure as stored: ``{type, message, traceback, retryable}``, long texts truncated."""

    type: str
    message: str
    traceback: str | None = None
    retryable: bool = False

    @classmethod
    def from_exception(cls, exc: BaseException) -> ErrorInfo:
        if isinstance(exc, HandlerFailed):
            trace: str | None = exc.remote_traceback or _format(exc)
            return cls(exc.type_name.removeprefix("builtins."), exc.message, trace, exc.retryable)
        if isinstance(exc, JobError):
            trace = _format(exc) if exc.__traceback__ or exc.__cause__ else None
            return cls(type(exc).__name__, exc.message, trace, exc.retryable)
        return cls(_qualified(type(exc)), _message(exc), _format(exc), False)

    def to_doc(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"type": self.type, "retryable": self.retryable}
        truncated: dict[str, int] = {}
        doc["message"] = _clip(self.message, MESSAGE_MAX_CHARS, "message", truncated)
        doc["traceback"] = (
            None
            if self.traceback is None
            else _clip(self.traceback, TRACEBACK_MAX_CHARS, "traceback", truncated, tail=True)
        )
        if truncated:
            doc["truncated"] = truncated  # field -> original length in characters
        return doc

    def summary(self, attempt: int, at: datetime) -> dict[str, Any]:
        """The short form kept in ``errors``, one per failed attempt."""
        return {
            "attempt": attempt,
            "type": self.type,
            "message": self.message[:SUMMARY_MAX_CHARS],
            "at": at,
        }


@dataclass(frozen=True)
class Result:
    """One run's outcome, as written to ``results``."""

    job: Job
    status: Status
    worker: str
    finished_at: datetime
    value: Any = None
    error: ErrorInfo | None = None
    handler: str | None = None
    handler_version: str | None = None
    errors: tuple[dict[str, Any], ...] = ()
    cancel: CancelRequest | None = None  # for a cancelled result: how it was asked for
    started: bool = True  # False: cancelled before this attempt's handler started
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def duration_ms(self) -> float | None:
        if not self.started:
            return None
        return round((self.finished_at - self.job.started_at).total_seconds() * 1000, 3)

    def to_doc(self, history: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        job = self.job
        doc: dict[str, Any] = {
            JOB_ID: job.key,
            JOB_DOC_ID: job.doc_id,
            COMMAND: job.command_name,
            STATUS: self.status.value,
            RUN: job.run,
            ATTEMPT: job.attempt if self.started else job.attempt - 1,
            FENCE: job.fence,
            CLAIM_ID: job.claim_id,
            CLAIMED_AT: job.started_at,
            "worker": self.worker,
            STARTED_AT: job.started_at if self.started else None,
            FINISHED_AT: self.finished_at,
            "duration_ms": self.duration_ms,
            "handler": self.handler,
            "handler_version": self.handler_version,
            ERRORS: list(self.errors),
            HISTORY: history or [],
        }
        if self.error is not None:
            doc[ERROR] = self.error.to_doc()
        else:
            doc[RESULT] = self.value
        if self.cancel is not None:
            doc[CANCELLED_AT] = self.finished_at
            doc[CANCELLED_VIA] = self.cancel.via
            doc[CANCEL_REQUESTED_AT] = self.cancel.requested_at
        doc.update(self.extra)
        return doc


def encoded_size(doc: Mapping[str, Any]) -> int:
    """The size of a result document as BSON, or :class:`ResultNotStorable` when BSON cannot
    hold its value (a set, an object, an integer over 64 bits)."""
    try:
        return len(bson.encode(doc))
    except Exception as exc:  # InvalidDocument, OverflowError, RecursionError, TypeError, ...
        kind = type(doc.get(RESULT)).__name__
        raise ResultNotStorable(
            f"return value of type {kind} cannot be stored as BSON: "
            f"{type(exc).__name__}: {str(exc)[:500]}"
        ) from None


def history_entry(result_doc: Mapping[str, Any]) -> dict[str, Any]:
    """A finished run as kept in the next run's ``history`` (a polling loop's result too)."""
    error = result_error(result_doc)
    attempts = result_doc.get(ATTEMPT)
    return {
        RUN: result_doc.get(RUN, 1),
        STATUS: result_status(result_doc),
        "attempts": attempts if attempts is not None else 1,
        "error_type": error[0] if error is not None else None,
        FINISHED_AT: result_finished_at(result_doc),
    }


# A result a polling loop wrote has no status; these fields of it mean its function raised.
FAILURE_FIELDS = ("error", "exception", "traceback")
UNTYPED_ERROR = "Error"  # the type of an old error whose text names none
_ERROR_LINE = re.compile(r"([A-Za-z_][\w.]*)(?:: ?(.*))?", re.DOTALL)  # ValueError: no paper
_ERROR_REPR = re.compile(r"([A-Za-z_][\w.]*)\((.*)\)", re.DOTALL)  # ValueError('no paper')


def is_own_result(result_doc: Mapping[str, Any]) -> bool:
    """Whether the reactor wrote this result (a polling loop's has no ``status`` of ours)."""
    return result_doc.get(STATUS) in STATUS_VALUES


def result_status(result_doc: Mapping[str, Any]) -> str:
    """A result's status: its own, or for a polling loop's whether its function raised."""
    status = result_doc.get(STATUS)
    if status in {s.value for s in TERMINAL_STATUSES}:
        return str(status)
    if any(result_doc.get(name) is not None for name in FAILURE_FIELDS):
        return Status.FAILED.value
    return Status.SUCCEEDED.value


def result_error(result_doc: Mapping[str, Any]) -> tuple[str, str] | None:
    """A result's error as ``(type, message)``: ours, or read from a polling loop's texts."""
    error = result_doc.get(ERROR)
    if isinstance(error, Mapping):
        return str(error.get("type") or UNTYPED_ERROR), str(error.get("message") or "")
    trace = result_doc.get("traceback")
    if isinstance(trace, str) and trace.strip():
        last = trace.strip().splitlines()[-1].strip()
        if (line := _ERROR_LINE.fullmatch(last)) is not None and line.group(2) is not None:
            return line.group(1), line.group(2).strip()
    for name in (ERROR, "exception"):
        text = result_doc.get(name)
        if text is not None:
            return _parse_error_text(str(text).strip())
    return None if trace is None else (UNTYPED_ERROR, str(trace).strip())


def _parse_error_text(text: str) -> tuple[str, str]:
    """``ValueError('x')`` or ``ValueError: x``; any other text is an untyped message."""
    if (found := _ERROR_REPR.fullmatch(text)) is not None:
        inner = found.group(2).strip()
        quoted = len(inner) >= 2 and inner[0] == inner[-1] and inner[0] in "'\""
        return found.group(1), inner[1:-1] if quoted else inner
    if (found := _ERROR_LINE.fullmatch(text)) is not None and found.group(2) is not None:
        return found.group(1), found.group(2).strip()
    return UNTYPED_ERROR, text


def result_finished_at(result_doc: Mapping[str, Any]) -> datetime | None:
    """When a result's run finished: its ``finished_at``, or when its document was written."""
    finished = result_doc.get(FINISHED_AT)
    if isinstance(finished, datetime):
        return finished
    doc_id = result_doc.get(ID)
    return doc_id.generation_time if isinstance(doc_id, ObjectId) else None


def _date_or_none(value: Any) -> datetime | None:
    if not isinstance(value, datetime):
        return None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def next_history(previous: Mapping[str, Any] | None, run: int) -> list[dict[str, Any]]:
    """The ``history`` of run ``run``'s result, from the result it replaces (if any)."""
    if previous is None or previous.get(RUN, 1) == run:
        return list(previous.get(HISTORY) or []) if previous is not None else []
    earlier = previous.get(HISTORY)
    kept = list(earlier) if isinstance(earlier, list) else []
    return [*kept, history_entry(previous)][-HISTORY_MAX:]


def _clip(
    text: str, limit: int, name: str, truncated: dict[str, int], *, tail: bool = False
) -> str:
    if len(text) <= limit:
        return text
    truncated[name] = len(text)
    note = f" ... [{len(text) - limit:,} characters cut of {len(text):,}] ... "
    return note + text[-limit:] if tail else text[:limit] + note


def _qualified(cls: type) -> str:
    return (
        cls.__qualname__ if cls.__module__ == "builtins" else f"{cls.__module__}.{cls.__qualname__}"
    )


def _message(exc: BaseException) -> str:
    try:
        return str(exc) or type(exc).__name__
    except Exception:  # a __str__ that raises
        return type(exc).__name__


def _format(exc: BaseException) -> str:
    try:
        return "".join(tb.format_exception(exc)).rstrip()
    except Exception:  # RecursionError and friends while formatting
        return f"{_qualified(type(exc))}: (traceback could not be formatted)"


# -- the fleet: one document per running reactor in ``reactor_workers`` (``reactor/fleet.py``) --
#
#     {"_id": <owner>, "name", "host", "pid", "version", "handlers": [...], "in_flight",
#      "max_jobs", "cpu_workers", "started_at", "last_seen",
#      "samples": [{"at", "cpu_percent", "rss_mb", "in_flight", "queued"}, ...]}
#
# ``last_seen`` is the server's clock at the latest heartbeat; a TTL index on it deletes an entry
# ``fleet_ttl_s`` after it; readers also skip entries older than that (the TTL monitor runs once a
# minute). ``samples`` keeps the last hour, oldest first.
WORKERS_COLLECTION = "reactor_workers"
LAST_SEEN = "last_seen"
SAMPLES = "samples"
SAMPLE_WINDOW_S = 3600.0


@dataclass(frozen=True)
class FleetSample:
    """One heartbeat's measurements of a reactor (its pool workers included)."""

    at: datetime
    cpu_percent: float
    rss_mb: float
    in_flight: int
    queued: int | None

    def to_doc(self) -> dict[str, Any]:
        return {
            "at": self.at,
            "cpu_percent": round(self.cpu_percent, 1),
            "rss_mb": round(self.rss_mb, 1),
            "in_flight": self.in_flight,
            "queued": self.queued,
        }


@dataclass(frozen=True)
class FleetMember:
    """What a reactor says about itself in ``reactor_workers``; fixed for its lifetime."""

    owner: str
    name: str
    host: str
    pid: int
    version: str
    handlers: tuple[str, ...]
    max_jobs: int
    cpu_workers: int
    started_at: datetime

    def to_doc(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "host": self.host,
            "pid": self.pid,
            "version": self.version,
            "handlers": list(self.handlers),
            "max_jobs": self.max_jobs,
            "cpu_workers": self.cpu_workers,
            "started_at": self.started_at,
        }
