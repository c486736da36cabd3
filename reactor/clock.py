"""The server's clock: every lease date is written and judged by MongoDB's time, not this host's.

Leases are dates on job documents that every reactor reads. Written and judged with each host's
own clock, a host 60 s ahead takes over jobs the moment another host starts them, and a host 60 s
behind writes leases that are born expired: the same job runs twice at once. So the reactor reads
MongoDB's clock instead: each hello reply of the driver's heartbeats carries the server's
``localTime``, and the difference between it and this host's clock at that moment (half the round
trip accounted for) is the skew. :meth:`ServerClock.now` is this host's time plus the skew: lease
dates, due times (``run_at``), results' times and the outage periods all use it.

The skew is logged as ``clock_skew`` when first measured and whenever it moves by more than
:data:`LOG_STEP_S`, and exported as ``reactor_clock_skew_seconds``. Its error is the one-way
latency to MongoDB (milliseconds), far below a lease.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo import monitoring

from reactor.logging import get_logger

log = get_logger("reactor.clock")

LOG_STEP_S = 0.5  # a skew that moved by more than this is logged again


class ServerClock(monitoring.ServerHeartbeatListener):
    """MongoDB's time as seen from here; a PyMongo heartbeat listener keeps it measured."""

    def __init__(self) -> None:
        self.skew_s = 0.0  # server time minus this host's time
        self.measured = False
        self._logged: float | None = None

    def now(self) -> datetime:
        """The server's current time (this host's until the first measurement)."""
        return datetime.now(UTC) + timedelta(seconds=self.skew_s)

    def observe(self, server_time: datetime, *, sent: datetime, received: datetime) -> None:
        """One reading: the server said ``server_time`` between ``sent`` and ``received``."""
        if server_time.tzinfo is None:
            server_time = server_time.replace(tzinfo=UTC)  # BSON dates are UTC
        midpoint = sent + (received - sent) / 2
        self.skew_s = (server_time - midpoint).total_seconds()
        self.measured = True
        if self._logged is None or abs(self.skew_s - self._logged) > LOG_STEP_S:
            self._logged = self.skew_s
            log.info("clock_skew", skew_s=round(self.skew_s, 3))

    def observe_hello(self, reply: Any, *, sent: datetime, received: datetime) -> None:
        """A hello reply (a document or PyMongo's ``Hello``), if it carries ``localTime``."""
        document = getattr(reply, "document", reply)
        server_time = document.get("localTime") if isinstance(document, dict) else None
        if isinstance(server_time, datetime):
            self.observe(server_time, sent=sent, received=received)

    # -- monitoring.ServerHeartbeatListener ---------------------------------------------------

    def started(self, event: monitoring.ServerHeartbeatStartedEvent) -> None:
        return None

    def succeeded(self, event: monitoring.ServerHeartbeatSucceededEvent) -> None:
        received = datetime.now(UTC)
        # An awaited (streaming) hello waits on the server before it answers: its duration is
        # not a round trip, so the reading is taken as sent when it arrived.
        lasted = timedelta(0) if event.awaited else timedelta(seconds=event.duration)
        self.observe_hello(event.reply, sent=received - lasted, received=received)

    def failed(self, event: monitoring.ServerHeartbeatFailedEvent) -> None:
        return None
