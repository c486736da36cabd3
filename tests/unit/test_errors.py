"""Errors keep their meaning across a process boundary."""

from __future__ import annotations

import pickle

from reactor.errors import HandlerFailed, InputError, JobError, JobTimeout, ReactorError, Retry


def test_every_error_has_one_root() -> None:
    """Job errors and the retry signal all derive from ReactorError."""
    assert issubclass(JobError, ReactorError)
    assert issubclass(Retry, ReactorError)
    assert not issubclass(Retry, JobError)


def test_job_errors_pickle_with_their_flags() -> None:
    """Type, message and retryable survive pickling (CPU pool replies)."""
    for error in (
        InputError("bad page", retryable=True),
        JobTimeout(2.5),
        HandlerFailed("boom", type_name="x.Y", remote_traceback="tb"),
    ):
        clone = pickle.loads(pickle.dumps(error))
        assert type(clone) is type(error)
        assert clone.message == error.message
        assert clone.retryable == error.retryable
    assert pickle.loads(pickle.dumps(JobTimeout(2.5))).message == "timeout after 2.5 s"
    assert pickle.loads(pickle.dumps(Retry("later", delay_s=3))).delay_s == 3
