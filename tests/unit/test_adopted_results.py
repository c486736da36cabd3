"""A polling loop's old results read sensibly: in ``reactor status`` and in the next run's history.

Such a result has no ``status``, ``run`` or ``finished_at``; its error is a string in ``error``,
``exception`` or ``traceback``. Its status comes from what it holds (as adoption decides), its
error type and message from the text, its time from its ``_id``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from bson import ObjectId

from reactor import job_view, model

WRITTEN = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)
ADOPTED = datetime(2026, 12, 1, 8, 0, 0, tzinfo=UTC)
TRACEBACK = (
    "Traceback (most recent call last):\n"
    '  File "app.py", line 12, in make_thumbnail\n'
    "    raise ValueError('no such page')\n"
    "ValueError: no such page\n"
)


def old_result(**fields: Any) -> dict[str, Any]:
    return {"_id": ObjectId.from_datetime(WRITTEN), "job_id": "scan-2", **fields}


def adopted_job(status: str) -> dict[str, Any]:
    return {
        "_id": ObjectId(),
        "job_id": "scan-2",
        "command": "make_thumbnail",
        "status": status,
        "finished_at": WRITTEN,
        "adopted_at": ADOPTED,
    }


@pytest.mark.parametrize(
    ("fields", "error_type", "message"),
    [
        ({"error": "ValueError('x')", "traceback": TRACEBACK}, "ValueError", "no such page"),
        ({"error": "ValueError('no such page')"}, "ValueError", "no such page"),
        ({"exception": "ValueError: no such page"}, "ValueError", "no such page"),
        ({"traceback": TRACEBACK}, "ValueError", "no such page"),
        ({"error": "the scanner jammed"}, "Error", "the scanner jammed"),
        ({"error": {"type": "KeyError", "message": "'page'"}}, "KeyError", "'page'"),
    ],
)
def test_an_old_error_gives_its_type_and_message(
    fields: dict[str, Any], error_type: str, message: str
) -> None:
    """repr strings, 'Type: message' lines and tracebacks all yield a type and a message."""
    assert model.result_error(old_result(**fields)) == (error_type, message)


def test_the_status_page_of_an_adopted_failed_job_shows_its_old_error() -> None:
    """reactor status: the result reads 'failed (run 1, ...)' with the error, not '- (run 1)'."""
    result = old_result(error="ValueError('no such page')", traceback=TRACEBACK)
    page = job_view.status_page(adopted_job("failed"), result)
    lines = dict(line.split(None, 1) for line in page.splitlines())
    assert lines["result"] == "failed (run 1, written before adoption at 2026-03-04 05:06:07)"
    assert lines["error"] == "ValueError: no such page"
    assert lines["adopted"] == "2026-12-01 08:00:00 (status from its existing result)"
    assert " - " not in page
    assert "?" not in page


def test_the_history_entry_of_an_old_failed_result_is_filled_in() -> None:
    """After reactor retry, run 1 of the history says failed, 1 attempt, its type and time."""
    result = old_result(error="ValueError('no such page')", traceback=TRACEBACK)
    [entry] = model.next_history(result, run=2)
    assert entry == {
        "run": 1,
        "status": "failed",
        "attempts": 1,
        "error_type": "ValueError",
        "finished_at": WRITTEN,
    }


def test_the_history_entry_of_an_old_returned_value_says_succeeded() -> None:
    """A plain old {job_id, result} becomes run 1 succeeded, without an error type."""
    [entry] = model.next_history(old_result(result={"file": "thumb.png"}), run=2)
    assert (entry["status"], entry["attempts"], entry["error_type"]) == ("succeeded", 1, None)
    assert entry["finished_at"] == WRITTEN


def test_our_own_results_read_as_before() -> None:
    """A result the reactor wrote keeps its own status, attempt and error type."""
    ours = {
        "job_id": "j",
        "status": "failed",
        "run": 3,
        "attempt": 2,
        "finished_at": ADOPTED,
        "error": {"type": "JobTimeout", "message": "timeout after 5 s"},
    }
    assert model.history_entry(ours) == {
        "run": 3,
        "status": "failed",
        "attempts": 2,
        "error_type": "JobTimeout",
        "finished_at": ADOPTED,
    }
    lines = dict(line.split(None, 1) for line in job_view.status_page(None, ours).splitlines())
    assert (lines["result"], lines["error"]) == ("failed (run 3)", "JobTimeout: timeout after 5 s")
