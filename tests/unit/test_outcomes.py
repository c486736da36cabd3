"""Outcome sorting and job checks are pure: the same input always gives the same result."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from bson import ObjectId

from reactor.dispatch import check_job, ensure_storable, sort_outcome
from reactor.errors import InputError, InvalidJob, ResultNotStorable, Retry, UnknownCommand
from reactor.model import ErrorInfo, Job, Status
from reactor.registry import Registry, build_handler


async def _noop() -> None:
    return None


REGISTRY = Registry([build_handler("echo", _noop), build_handler("ocr", _noop)])


def _job(**doc: Any) -> Job:
    base = {"_id": ObjectId(), "job_id": "j", "command": "echo", "args": {}}
    return Job.from_doc(
        {**base, **doc, "attempt": 1, "lease_owner": "me", "started_at": datetime.now(UTC)}
    )


def test_a_return_value_succeeds() -> None:
    """No exception means succeeded, with the value kept."""
    assert sort_outcome(None, {"x": 1}, attempt=1, max_attempts=3).value == {"x": 1}


def test_job_errors_fail_with_their_type_and_flag() -> None:
    """A JobError becomes a failed outcome carrying its class name and retryable flag."""
    outcome = sort_outcome(
        InputError("not an image", retryable=False), None, attempt=1, max_attempts=3
    )
    assert outcome.status is Status.FAILED
    assert outcome.error is not None
    assert (outcome.error.type, outcome.error.message) == ("InputError", "not an image")


def test_unexpected_exceptions_keep_type_and_traceback() -> None:
    """Any other exception is stored as {type, message, traceback}."""
    try:
        raise KeyError("page")
    except KeyError as exc:
        outcome = sort_outcome(exc, None, attempt=1, max_attempts=3)
    assert outcome.error is not None
    assert outcome.error.type == "KeyError"
    assert "raise KeyError" in (outcome.error.traceback or "")


def test_retry_requeues_until_attempts_are_used() -> None:
    """Retry puts the job back while attempts remain, then fails it for good."""
    assert sort_outcome(Retry("busy"), None, attempt=1, max_attempts=2).retry
    final = sort_outcome(Retry("busy"), None, attempt=2, max_attempts=2)
    assert final.status is Status.FAILED
    assert not final.retry
    assert final.error is not None
    assert final.error.type == "GaveUp"


def test_remote_builtin_type_names_are_shortened() -> None:
    """A worker's 'builtins.ValueError' is stored as 'ValueError', like a local one."""
    from reactor.errors import HandlerFailed

    info = ErrorInfo.from_exception(
        HandlerFailed("x", type_name="builtins.ValueError", remote_traceback="Traceback ...")
    )
    assert (info.type, info.traceback) == ("ValueError", "Traceback ...")


@pytest.mark.parametrize(
    ("doc", "error", "message"),
    [
        ({"job_id": None}, InvalidJob, "job has no job_id"),
        ({"command": None}, InvalidJob, "known commands: echo, ocr"),
        ({"command": "nope"}, UnknownCommand, "unknown command 'nope'; known commands: echo, ocr"),
        ({"args": [1, 2]}, InvalidJob, "args must be a mapping"),
        ({"args": "x=1"}, InvalidJob, "got str"),
    ],
)
def test_malformed_jobs_are_named(
    doc: dict[str, Any], error: type[Exception], message: str
) -> None:
    """Each kind of malformed job raises a clear error before any handler runs."""
    job = _job(**doc)
    handler = REGISTRY.get(job.command) if isinstance(job.command, str) else None
    with pytest.raises(error, match=message):
        check_job(job, handler, REGISTRY)


def test_a_job_without_job_id_is_keyed_by_its_object_id() -> None:
    """The result of a job without job_id is keyed by the document's _id."""
    oid = ObjectId()
    job = Job.from_doc({"_id": oid, "command": "echo", "attempt": 1})
    assert (job.key, job.has_job_id) == (str(oid), False)


def test_results_must_be_bson() -> None:
    """A value BSON cannot hold is refused with its type named."""
    ensure_storable({"ok": [1, "two", None]})
    with pytest.raises(ResultNotStorable, match="type set"):
        ensure_storable({1, 2})
    with pytest.raises(ResultNotStorable, match="object"):
        ensure_storable({"x": object()})
