"""Jobs, results and statuses: the only code that knows the MongoDB document shapes.

A job as clients write it::

    {"job_id": "<unique string>", "command": "<handler name>", "args": {...}}

Fields the reactor manages on the job: ``status`` (absent means queued), ``attempt``,
``lease_owner``, ``lease_expires_at``, ``created_at`` (set when absent), ``started_at``,
``finished_at``. A result, one per job, keyed by ``job_id`` (or the job's ``_id`` when the job
has no ``job_id``)::

    {"job_id", "command", "status", "result" | "error": {type, message, traceback, retryable},
     "attempt", "worker", "started_at", "finished_at", "duration_ms", "handler", "handler_version"}
"""

from __future__ import annotations

import traceback as tb
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from reactor.errors import HandlerFailed, JobError


class Status(StrEnum):
    """A job's state. A job document without ``status`` is queued."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


TERMINAL_STATUSES = frozenset({Status.SUCCEEDED, Status.FAILED, Status.CANCELLED})

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
FENCE = "fence"  # fencing token: +1 on every claim, never reset (the reactor's own)
PRIORITY = "priority"  # higher runs first; absent means 0
RUN_AT = "run_at"  # not started before this date
CANCEL_REQUESTED = "cancel_requested"
CANCEL_REQUESTED_AT = "cancel_requested_at"
CANCELLED_AT = "cancelled_at"
CANCELLED_VIA = "cancelled_via"  # "cancel_requested" or "status": how the cancel was asked for
PROGRESS = "progress"  # {fraction, message, updated_at}
ISOLATED = "isolated"  # a reclaimed job running alone: its reactor dying now makes it poison
ERRORS = "errors"  # this run's failed attempts: [{attempt, type, message, at}]
ADOPTED_AT = "adopted_at"
# Result fields beyond the job's.
RESULT = "result"
ERROR = "error"
HISTORY = "history"  # earlier runs: [{run, status, attempts, error_type, finished_at}]
JOB_DOC_ID = "job_doc_id"

CLAIM_ORDER: list[tuple[str, int]] = [(ID, 1)]  # ObjectIds grow with insertion time: oldest first


@dataclass(frozen=True)
class Job:
    """A claimed job as the dispatcher sees it. ``command`` and ``args`` are unchecked here."""

    doc_id: Any
    key: str  # job_id, or str(_id) when the document has none
    has_job_id: bool
    command: Any
    args: Any
    attempt: int
    owner: str
    started_at: datetime
    reclaimed: bool = False  # claimed from an owner whose lease had expired

    @classmethod
    def from_claim(cls, before: Mapping[str, Any], owner: str, now: datetime) -> Job:
        """The job as a claim left it, from the document as it was just before the claim."""
        after = {
            **before,
            LEASE_OWNER: owner,
            STARTED_AT: now,
            ATTEMPT: int(before.get(ATTEMPT, 0)) + 1,
        }
        job = cls.from_doc(after)
        reclaimed = before.get(STATUS) == Status.RUNNING.value
        return cls(**{**job.__dict__, "reclaimed": reclaimed})

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any]) -> Job:
        """Read a claimed job document; never raises, validation happens in dispatch."""
        job_id = doc.get(JOB_ID)
        key = job_id if isinstance(job_id, str) and job_id else None
        return cls(
            doc_id=doc[ID],
            key=key if key is not None else str(doc[ID]),
            has_job_id=key is not None,
            command=doc.get(COMMAND),
            args=doc.get(ARGS, {}),
            attempt=int(doc.get(ATTEMPT, 1)),
            owner=str(doc.get(LEASE_OWNER, "")),
            started_at=doc.get(STARTED_AT) or datetime.now().astimezone(),
        )

    @property
    def command_name(self) -> str:
        """The command as a string for logs and results, whatever the document held."""
        return self.command if isinstance(self.command, str) else repr(self.command)

    def fence(self) -> dict[str, Any]:
        """The filter that matches this job only while this attempt still owns it."""
        return {
            ID: self.doc_id,
            LEASE_OWNER: self.owner,
            ATTEMPT: self.attempt,
            STATUS: Status.RUNNING.value,
        }


def claimable_filter(now: datetime) -> dict[str, Any]:
    """Jobs that may be claimed: queued (or without status), or running with an expired lease."""
    return {
        "$or": [
            {STATUS: {"$exists": False}},
            {STATUS: Status.QUEUED.value},
            {STATUS: Status.RUNNING.value, LEASE_EXPIRES_AT: {"$lt": now}},
        ]
    }


def claim_update(owner: str, now: datetime, lease_s: float) -> dict[str, Any]:
    """Move a job to running under ``owner`` with a fresh lease and the next attempt number."""
    return {
        "$set": {
            STATUS: Status.RUNNING.value,
            LEASE_OWNER: owner,
            LEASE_EXPIRES_AT: now + timedelta(seconds=lease_s),
            STARTED_AT: now,
        },
        "$unset": {FINISHED_AT: ""},
        "$min": {CREATED_AT: now},  # sets created_at when absent, keeps an older one
        "$inc": {ATTEMPT: 1},
    }


def renew_update(now: datetime, lease_s: float) -> dict[str, Any]:
    """Extend a lease (the heartbeat)."""
    return {"$set": {LEASE_EXPIRES_AT: now + timedelta(seconds=lease_s)}}


def finish_update(status: Status, now: datetime) -> dict[str, Any]:
    """Record a job's final status and drop its lease."""
    return {
        "$set": {STATUS: status.value, FINISHED_AT: now},
        "$unset": {LEASE_OWNER: "", LEASE_EXPIRES_AT: ""},
    }


def requeue_update() -> dict[str, Any]:
    """Put a job back to queued for another attempt (a ``Retry``)."""
    return {
        "$set": {STATUS: Status.QUEUED.value},
        "$unset": {LEASE_OWNER: "", LEASE_EXPIRES_AT: "", STARTED_AT: ""},
    }


@dataclass(frozen=True)
class ErrorInfo:
    """A failure as stored: ``{type, message, traceback, retryable}``."""

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
        return cls(_qualified(type(exc)), str(exc) or type(exc).__name__, _format(exc), False)

    def to_doc(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "message": self.message,
            "traceback": self.traceback,
            "retryable": self.retryable,
        }


@dataclass(frozen=True)
class Result:
    """One job's outcome, as written to ``results``."""

    job_key: str
    command: str
    status: Status
    attempt: int
    worker: str
    started_at: datetime
    finished_at: datetime
    value: Any = None
    error: ErrorInfo | None = None
    handler: str | None = None
    handler_version: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def duration_ms(self) -> float:
        return round((self.finished_at - self.started_at).total_seconds() * 1000, 3)

    def to_doc(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            JOB_ID: self.job_key,
            COMMAND: self.command,
            STATUS: self.status.value,
            ATTEMPT: self.attempt,
            "worker": self.worker,
            STARTED_AT: self.started_at,
            FINISHED_AT: self.finished_at,
            "duration_ms": self.duration_ms,
            "handler": self.handler,
            "handler_version": self.handler_version,
        }
        if self.error is not None:
            doc["error"] = self.error.to_doc()
        else:
            doc["result"] = self.value
        doc.update(self.extra)
        return doc


def _qualified(cls: type) -> str:
    return (
        cls.__qualname__ if cls.__module__ == "builtins" else f"{cls.__module__}.{cls.__qualname__}"
    )


def _format(exc: BaseException) -> str:
    return "".join(tb.format_exception(exc)).rstrip()
