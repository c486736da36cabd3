"""How the stream turns change events into wake-ups (no database needed)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from reactor.stream import PIPELINE, JobStream


def _stream(wakes: list[int], lags: list[float]) -> JobStream:
    store: Any = object()
    return JobStream(store, lambda: wakes.append(1), on_lag=lags.append)


def test_an_event_wakes_and_reports_its_lag() -> None:
    """A job event wakes the claim loop once and reports how late it arrived."""
    wakes: list[int] = []
    lags: list[float] = []
    stream = _stream(wakes, lags)
    stream._on_change(
        {"operationType": "insert", "wallTime": datetime.now(UTC) - timedelta(seconds=2)}
    )
    assert wakes == [1]
    assert lags == [pytest.approx(2, abs=0.5)]
    assert stream.events == 1


def test_an_invalidate_keeps_its_token_and_does_not_wake() -> None:
    """An invalidate event is remembered as the token to start after, not a job."""
    wakes: list[int] = []
    stream = _stream(wakes, [])
    stream._on_change({"operationType": "invalidate", "_id": {"_data": "ff"}})
    assert wakes == []
    assert stream.token == {"_data": "ff"}


def test_only_inserts_replacements_and_requeues_match() -> None:
    """The pipeline passes inserts, replacements and updates that set status queued."""
    from mongomock.filtering import filter_applies

    match = PIPELINE[0]["$match"]
    assert filter_applies(match, {"operationType": "insert"})
    assert filter_applies(
        match,
        {"operationType": "update", "updateDescription": {"updatedFields": {"status": "queued"}}},
    )
    for own_write in (
        {"status": "running", "lease_owner": "me"},
        {"lease_expires_at": 1},
        {"status": "succeeded"},
    ):
        assert not filter_applies(
            match, {"operationType": "update", "updateDescription": {"updatedFields": own_write}}
        )
