"""How an attempt ended, before it is recorded; sorted by pure functions.

=============  ===============================================================================
``SUCCEEDED``  the handler returned a storable value: a succeeded result
``FAILED``     a final failure: a failed result, with every attempt's error in ``errors``
``CANCELLED``  cancelled through the document: a cancelled result saying when and via what
``RETRY``      another attempt, after ``delay_s``: back to queued with ``run_at`` set; its
               error (a ``Retry``'s reason, or the failure) goes to ``errors``
``HAND_BACK``  stopped for a reason that is not the job's (drain, lost keep-alive): back to
               queued with the same attempt, runnable at once
``LOST``       another claim owns the job now (the fence failed): nothing to record
``RELEASE``    the client set the running job back to queued: give the lease up, record nothing
=============  ===============================================================================

A final outcome whose result MongoDB refuses (a validator, a document too large) is recorded
again as a minimal failed result (``ResultRefused``, without the refused value) and, only when
that is refused too, on the job document alone (:class:`Record`).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

from reactor.errors import GaveUp, ResultNotStorable, ResultRefused, Retry
from reactor.model import CancelRequest, ErrorInfo, Status
from reactor.retry import RetryRules, retry_delay
from reactor.usage import Usage


class Kind(enum.Enum):
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    RETRY = "retry"
    HAND_BACK = "hand_back"
    LOST = "lost"
    RELEASE = "release"


class Record(enum.Enum):
    """Where a final outcome is written."""

    RESULT = "result"  # a result document, then the job's final status
    MINIMAL = "minimal"  # the result was refused: a minimal failed result instead
    JOB_ONLY = "job_only"  # that was refused too: the job document alone carries the outcome


FINAL_STATUS = {
    Kind.SUCCEEDED: Status.SUCCEEDED,
    Kind.FAILED: Status.FAILED,
    Kind.CANCELLED: Status.CANCELLED,
}


@dataclass(frozen=True)
class Outcome:
    """One attempt's end."""

    kind: Kind
    value: Any = None
    error: ErrorInfo | None = None
    delay_s: float = 0.0
    cancel: CancelRequest | None = None
    started: bool = True  # False: the handler never started (a cancellation before the start)
    usage: Usage | None = None  # what the handler's call cost, when it ran
    record: Record = Record.RESULT

    @property
    def status(self) -> Status | None:
        """The final status this outcome records, or ``None`` (retry, hand back)."""
        return FINAL_STATUS.get(self.kind)


def succeeded(value: Any) -> Outcome:
    return Outcome(Kind.SUCCEEDED, value=value)


def failed(exc: BaseException) -> Outcome:
    return Outcome(Kind.FAILED, error=ErrorInfo.from_exception(exc))


def cancelled(request: CancelRequest, *, started: bool = True) -> Outcome:
    return Outcome(Kind.CANCELLED, cancel=request, started=started)


LOST = Outcome(Kind.LOST)
RELEASE = Outcome(Kind.RELEASE)
HAND_BACK = Outcome(Kind.HAND_BACK)
ABANDONED_HAND_BACK = Outcome(Kind.HAND_BACK, delay_s=3.0)  # due once this process has exited


def refused(previous: Outcome, exc: BaseException) -> Outcome:
    """The outcome to record after MongoDB refused ``previous``'s result: a minimal failed
    result, or, when that minimal result was refused too, the job document alone."""
    record = Record.JOB_ONLY if previous.record is Record.MINIMAL else Record.MINIMAL
    if not isinstance(exc, ResultRefused):
        exc = ResultRefused(f"MongoDB refused the result: {type(exc).__name__}: {_why(exc)}")
    error = ErrorInfo.from_exception(exc)
    return Outcome(Kind.FAILED, error=error, record=record, started=previous.started)


def _why(exc: BaseException) -> str:
    """The server's own message, without the "full error" PyMongo appends (which can echo the
    whole refused document)."""
    details = getattr(exc, "details", None)
    message = details.get("errmsg") if isinstance(details, dict) else None
    text = str(message) if message else str(exc)
    return text[:REFUSAL_MAX_CHARS]


REFUSAL_MAX_CHARS = 1_000


def sort_exception(exc: BaseException, *, attempt: int, policy: RetryRules) -> Outcome:
    """A handler's exception as an outcome: another attempt, or a final failure (pure)."""
    delay_s = retry_delay(exc, attempt, policy)
    if delay_s is not None:
        return Outcome(Kind.RETRY, error=retry_reason(exc), delay_s=delay_s)
    if isinstance(exc, Retry):
        used = policy.max_attempts
        return failed(GaveUp(f"retry requested ({exc.reason}) but all {used} attempts are used"))
    return failed(exc)


def retry_reason(exc: BaseException) -> ErrorInfo:
    """What an attempt that runs again leaves in ``errors``: a ``Retry`` keeps its reason."""
    if isinstance(exc, Retry):
        return ErrorInfo("Retry", exc.reason, None, retryable=True)
    return ErrorInfo.from_exception(exc)


MAX_DEPTH = 99  # MongoDB stores documents nested at most 100 deep; the result document is one


def nesting_depth(value: Any, limit: int = MAX_DEPTH) -> int:
    """How deep documents and arrays nest in ``value`` (iteratively; stops counting past limit)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children = (
            item.values()
            if isinstance(item, dict)
            else item
            if isinstance(item, list | tuple)
            else None
        )
        if children is None:
            continue
        deepest = max(deepest, depth)
        if deepest > limit:
            return deepest
        stack.extend((child, depth + 1) for child in children)
    return deepest


def sort_value(value: Any) -> Outcome:
    """A handler's return value as an outcome: succeeded, or failed when it nests deeper than
    BSON allows. (Whether BSON can hold it at all is found when the result document is encoded,
    once, by :func:`reactor.model.encoded_size`.)"""
    if nesting_depth(value) > MAX_DEPTH:
        return failed(
            ResultNotStorable(
                f"return value nests documents or arrays more than {MAX_DEPTH} deep; MongoDB "
                "stores at most 100 levels"
            )
        )
    return succeeded(value)
