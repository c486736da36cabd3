"""Outcome sorting, job checks and claim parsing are pure: the same input, the same result."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from bson import Decimal128, ObjectId

from reactor.dispatch import check_job, early_outcome
from reactor.errors import (
    HandlerFailed,
    InputError,
    InvalidJob,
    JobTimeout,
    ResultNotStorable,
    Retry,
    UnknownCommand,
    WorkerCrashed,
)
from reactor.model import (
    MESSAGE_MAX_CHARS,
    ErrorInfo,
    Job,
    document_problem,
    encoded_size,
    next_history,
)
from reactor.outcome import Kind, sort_exception, sort_value
from reactor.registry import Registry, build_handler
from reactor.retry import RetryPolicy, RetryRules

NOW = datetime(2026, 12, 1, tzinfo=UTC)
POLICY = RetryRules(max_attempts=3, backoff_s=1.0, max_backoff_s=60.0, jitter=0.0)
SETTINGS = RetryRules(max_attempts=1, backoff_s=0.0, max_backoff_s=300.0)


async def _noop() -> None:
    return None


REGISTRY = Registry([build_handler("echo", _noop), build_handler("ocr", _noop)])


def _claimed(**doc: Any) -> Job:
    base: dict[str, Any] = {"_id": ObjectId(), "job_id": "j", "command": "echo", "args": {}}
    return Job.from_claim({**base, **doc}, "me", NOW)


def test_a_return_value_succeeds() -> None:
    """A storable value is a succeeded outcome carrying it."""
    outcome = sort_value({"x": 1})
    assert (outcome.kind, outcome.value) == (Kind.SUCCEEDED, {"x": 1})


@pytest.mark.parametrize("value", [{1, 2}, {"x": object()}, {"n": 2**70}])
def test_a_value_bson_cannot_hold_is_not_storable(value: Any) -> None:
    """Sets, arbitrary objects and oversized integers are found when the result document is
    encoded (the one encoding the reactor makes), as ResultNotStorable naming the value's type."""
    assert sort_value(value).kind is Kind.SUCCEEDED  # not encoded here: no second encoding
    with pytest.raises(ResultNotStorable, match=f"return value of type {type(value).__name__}"):
        encoded_size({"job_id": "j", "result": value})


def test_a_deeply_nested_value_fails_as_not_storable() -> None:
    """A value nested 2,000 deep is ResultNotStorable, not a RecursionError."""
    value: Any = "leaf"
    for _ in range(2000):
        value = {"a": value}
    outcome = sort_value(value)
    assert outcome.error is not None
    assert outcome.error.type == "ResultNotStorable"


def test_input_errors_are_not_retried() -> None:
    """Bad input fails at once, whatever attempts remain."""
    outcome = sort_exception(InputError("not an image"), attempt=1, policy=POLICY)
    assert outcome.kind is Kind.FAILED
    assert outcome.error is not None
    assert (outcome.error.type, outcome.error.message) == ("InputError", "not an image")


def test_worker_crashes_are_retried_with_exponential_backoff() -> None:
    """A crashed worker retries after backoff_s, then twice that."""
    first = sort_exception(WorkerCrashed("signal 9"), attempt=1, policy=POLICY)
    second = sort_exception(WorkerCrashed("signal 9"), attempt=2, policy=POLICY)
    assert (first.kind, first.delay_s) == (Kind.RETRY, 1.0)
    assert (second.kind, second.delay_s) == (Kind.RETRY, 2.0)
    last = sort_exception(WorkerCrashed("signal 9"), attempt=3, policy=POLICY)
    assert last.kind is Kind.FAILED


def test_timeouts_retry_only_when_the_policy_says_so() -> None:
    """JobTimeout is final by default and retried with retry_timeouts=True."""
    assert sort_exception(JobTimeout(5), attempt=1, policy=POLICY).kind is Kind.FAILED
    policy = RetryPolicy(max_attempts=3, backoff_s=1, retry_timeouts=True, jitter=0).resolve(
        SETTINGS
    )
    assert sort_exception(JobTimeout(5), attempt=1, policy=policy).kind is Kind.RETRY


def test_a_retry_request_uses_its_own_delay() -> None:
    """Retry(delay_s=2) asks for exactly two seconds, and its reason is kept for ``errors``."""
    outcome = sort_exception(Retry("busy", delay_s=2), attempt=1, policy=POLICY)
    assert (outcome.kind, outcome.delay_s) == (Kind.RETRY, 2.0)
    assert outcome.error is not None
    assert outcome.error.summary(1, NOW) == {
        "attempt": 1,
        "type": "Retry",
        "message": "busy",
        "at": NOW,
    }


def test_a_retry_request_past_the_last_attempt_gives_up() -> None:
    """Retry on the last attempt fails with GaveUp."""
    outcome = sort_exception(Retry("busy"), attempt=3, policy=POLICY)
    assert outcome.error is not None
    assert outcome.error.type == "GaveUp"


def test_jitter_shortens_the_backoff_by_at_most_its_fraction() -> None:
    """With jitter 0.5 the delay lies between half and all of the backoff."""
    policy = RetryPolicy(max_attempts=5, backoff_s=4, max_backoff_s=100, jitter=0.5).resolve(
        SETTINGS
    )
    assert policy.backoff(1, rand=lambda: 0.0) == 4.0
    assert policy.backoff(1, rand=lambda: 1.0) == 2.0
    assert policy.backoff(10, rand=lambda: 0.0) == 100.0


def test_a_handlers_own_exception_types_retry_when_listed() -> None:
    """retry_on names exception types (or, for process handlers, their names) that retry."""
    policy = RetryPolicy(
        max_attempts=2, backoff_s=0, retry_on=(ConnectionError, "MyGlitch")
    ).resolve(SETTINGS)
    assert sort_exception(ConnectionResetError(), attempt=1, policy=policy).kind is Kind.RETRY
    remote = HandlerFailed("x", type_name="app.MyGlitch")
    assert sort_exception(remote, attempt=1, policy=policy).kind is Kind.RETRY
    assert sort_exception(KeyError("k"), attempt=1, policy=policy).kind is Kind.FAILED


def test_unexpected_exceptions_keep_type_and_traceback() -> None:
    """Any other exception is stored as {type, message, traceback}."""
    try:
        raise KeyError("page")
    except KeyError as exc:
        outcome = sort_exception(exc, attempt=1, policy=POLICY)
    assert outcome.error is not None
    assert outcome.error.type == "KeyError"
    assert "raise KeyError" in (outcome.error.traceback or "")


def test_a_huge_error_message_is_truncated_with_its_size_noted() -> None:
    """A 10 MB message is cut to the limit and the original length is recorded."""
    doc = ErrorInfo.from_exception(RuntimeError("x" * 10_000_000)).to_doc()
    assert len(doc["message"]) < MESSAGE_MAX_CHARS + 200
    assert doc["truncated"]["message"] == 10_000_000


def test_remote_builtin_type_names_are_shortened() -> None:
    """A worker's 'builtins.ValueError' is stored as 'ValueError', like a local one."""
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
    job = _claimed(**doc)
    handler = REGISTRY.get(job.command) if isinstance(job.command, str) else None
    with pytest.raises(error, match=message):
        check_job(job, handler, REGISTRY)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("attempt", "2"),
        ("attempt", Decimal128(Decimal("1"))),
        ("attempt", math.nan),
        ("attempt", math.inf),
        ("attempt", 2**63 - 1),
        ("attempt", -1),
        ("attempt", True),
        ("run", "x"),
        ("status", "QUEUED"),
        ("status", 5),
        ("priority", "high"),
        ("priority", math.nan),
        ("run_at", "tomorrow"),
        ("cancel_requested", "yes"),
    ],
)
def test_malformed_reactor_fields_are_named(field: str, value: Any) -> None:
    """A malformed attempt, run, status, priority, run_at or cancel flag is named in the problem."""
    problem = document_problem({field: value})
    assert problem is not None
    assert problem.startswith(field)
    job = _claimed(**{field: value})
    outcome = early_outcome(job, REGISTRY.get("echo"), REGISTRY)
    assert outcome is not None
    assert outcome.error is not None
    assert outcome.error.type == "InvalidJob"


def test_a_status_outside_the_set_names_the_accepted_values() -> None:
    """The InvalidJob message lists the statuses the reactor accepts."""
    assert "queued, running, succeeded, failed, cancelled" in (
        document_problem({"status": "QUEUED"}) or ""
    )


@pytest.mark.parametrize(("field", "value"), [("status", None), ("priority", -3), ("attempt", 2.0)])
def test_well_formed_values_are_accepted(field: str, value: Any) -> None:
    """Null status, negative priorities and whole-number floats are fine."""
    assert document_problem({field: value}) is None


def test_a_fresh_claim_is_attempt_one_of_run_one() -> None:
    """A new job's first claim: run 1, attempt 1, fence 1, not a reclaim."""
    job = _claimed()
    assert (job.run, job.attempt, job.fence, job.reclaimed, job.rerun) == (1, 1, 1, False, False)


def test_a_finished_job_set_back_to_queued_starts_a_new_run() -> None:
    """status queued on a finished job: the next run, attempt 1, earlier errors dropped."""
    job = _claimed(status="queued", finished_at=NOW, run=4, attempt=3, fence=9, errors=[{"a": 1}])
    assert (job.rerun, job.run, job.attempt, job.fence, job.errors) == (True, 5, 1, 10, ())


def test_a_running_job_claimed_again_is_a_reclaim_of_the_same_attempt() -> None:
    """An expired lease is reclaimed without charging an attempt."""
    job = _claimed(status="running", attempt=2, fence=5, lease_owner="dead")
    assert (job.reclaimed, job.attempt, job.fence, job.poison) == (True, 2, 6, False)


def test_a_reclaim_of_a_job_that_ran_alone_is_poison() -> None:
    """A reclaimed job whose earlier reclaim ran alone killed its reactor: poison."""
    job = _claimed(status="running", isolated=True, fence=3)
    assert job.poison
    outcome = early_outcome(job, REGISTRY.get("echo"), REGISTRY)
    assert outcome is not None
    assert outcome.error is not None
    assert outcome.error.type == "PoisonJob"


def test_a_cancel_request_is_read_from_either_field() -> None:
    """cancel_requested true and status cancelled both ask for cancellation."""
    by_flag = _claimed(cancel_requested=True, cancel_requested_at=NOW).cancel
    by_status = _claimed(status="cancelled").cancel
    assert by_flag is not None
    assert (by_flag.via, by_flag.requested_at) == ("cancel_requested", NOW)
    assert by_status is not None
    assert by_status.via == "status"


def test_a_job_without_job_id_is_keyed_by_its_object_id() -> None:
    """The result of a job without job_id is keyed by the document's _id."""
    oid = ObjectId()
    job = Job.from_claim({"_id": oid, "command": "echo"}, "me", NOW)
    assert (job.key, job.has_job_id) == (str(oid), False)


def test_history_keeps_earlier_runs_and_not_the_same_run_twice() -> None:
    """A new run's history appends the replaced result; a rewrite of one run keeps it as is."""
    first = {"run": 1, "status": "failed", "attempt": 3, "error": {"type": "X"}, "finished_at": NOW}
    history = next_history(first, run=2)
    assert history == [
        {"run": 1, "status": "failed", "attempts": 3, "error_type": "X", "finished_at": NOW}
    ]
    second = {"run": 2, "status": "succeeded", "attempt": 1, "history": history}
    assert len(next_history(second, run=3)) == 2
    assert next_history(second, run=2) == history
