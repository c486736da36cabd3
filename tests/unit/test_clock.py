"""The server's clock: leases use MongoDB's time, measured from hello replies, not this host's."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

from structlog.testing import capture_logs

from reactor.clock import ServerClock


def test_the_skew_is_measured_at_the_middle_of_the_round_trip() -> None:
    """A server 60 s ahead, answering in the middle of a 2 s round trip, reads as +60 s."""
    clock = ServerClock()
    sent = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
    clock.observe(sent + timedelta(seconds=61), sent=sent, received=sent + timedelta(seconds=2))
    assert clock.skew_s == 60.0
    assert abs((clock.now() - datetime.now(UTC)).total_seconds() - 60.0) < 1.0


def test_naive_server_dates_are_utc() -> None:
    """BSON dates without a time zone are UTC: a naive localTime measures like an aware one."""
    clock = ServerClock()
    now = datetime.now(UTC)
    clock.observe((now - timedelta(seconds=30)).replace(tzinfo=None), sent=now, received=now)
    assert round(clock.skew_s) == -30


def test_the_skew_is_logged_when_first_measured_and_when_it_moves() -> None:
    """clock_skew is logged at the first reading and again only when it moves by > 0.5 s."""
    clock = ServerClock()
    now = datetime.now(UTC)
    with capture_logs() as logs:
        for skew_s in (10.0, 10.2, 10.4, 11.0):
            clock.observe(now + timedelta(seconds=skew_s), sent=now, received=now)
    assert [entry["skew_s"] for entry in logs if entry["event"] == "clock_skew"] == [10.0, 11.0]


def test_heartbeats_keep_it_measured() -> None:
    """A heartbeat's hello reply (``localTime``) updates the skew; an awaited (streaming) one is
    taken as sent when it arrived, since its duration is not a round trip."""
    clock = ServerClock()
    ahead = datetime.now(UTC) + timedelta(seconds=42)
    reply = SimpleNamespace(document={"localTime": ahead})
    clock.succeeded(SimpleNamespace(reply=reply, awaited=True, duration=9.0))  # type: ignore[arg-type]
    assert round(clock.skew_s) == 42
    clock.succeeded(
        SimpleNamespace(reply=SimpleNamespace(document={}), awaited=False, duration=0.1)
    )  # type: ignore[arg-type]
    assert round(clock.skew_s) == 42  # no localTime: no reading
