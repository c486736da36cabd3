"""Whether MongoDB is away: the one place that knows, and that everyone else asks.

Two kinds of report reach it:

- the driver's server monitor (:attr:`Connectivity.monitor`, a PyMongo ``ServerListener``): the
  server stops being writable when the reactor loses it, and becomes writable again when it is
  back (a failover, a restart of an empty server, the end of a network cut);
- the reactor's own driver calls (:class:`reactor.driver.Calls`): a call that failed for want of
  MongoDB, and how long it had waited. A blackhole times calls out without the monitor noticing.

And three kinds of question:

- :meth:`Connectivity.reclaim_allowed`: no reclaims of expired leases for a lease's length after
  MongoDB was away, so owners that survived the outage renew theirs before anyone takes their jobs;
- :meth:`Connectivity.explains`: did a lease run out during (or a lease's length around) an outage
  this reactor saw? Such a reclaim runs shared, not alone (``admission.py``);
- :meth:`Connectivity.wait_back`: returns when MongoDB answers again after being away, so the
  service ensures its indexes and catches up on every claim tier.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import anyio
from pymongo import monitoring

from reactor.logging import get_logger

log = get_logger("reactor.connectivity")

OUTAGES_KEPT = 8


class Connectivity:
    """What this reactor saw of MongoDB's reachability. Build it inside the running event loop."""

    def __init__(
        self, lease_s: float, now: Callable[[], datetime] = lambda: datetime.now(UTC)
    ) -> None:
        self._lease_s = lease_s
        self._loop = asyncio.get_running_loop()
        self._last_failure = -math.inf  # monotonic: MongoDB was away just then
        self._away_since: float | None = None  # monotonic, while the monitor says it is away
        self._outages = Outages(lease_s, now)
        self._back = anyio.Event()
        self.monitor = _Monitor(self._on_loop)

    # -- reports ---------------------------------------------------------------------------

    def call_failed(self, lasted_s: float) -> None:
        """A driver call failed for want of MongoDB after waiting ``lasted_s``."""
        self._last_failure = time.monotonic()
        self._outages.add(lasted_s)

    def went_away(self) -> None:
        """The monitor lost MongoDB."""
        self._last_failure = time.monotonic()
        if self._away_since is None:
            self._away_since = self._last_failure
            self._outages.open()
            log.warning("mongodb_unreachable")

    def came_back(self) -> None:
        """The monitor sees MongoDB writable; after an absence, wake :meth:`wait_back`."""
        if self._away_since is None:
            return  # the first sight of it at startup: nothing was missed
        now = time.monotonic()
        log.info("mongodb_reachable", unreachable_s=round(now - self._away_since, 3))
        self._last_failure, self._away_since = now, None
        self._outages.close()
        self._back.set()
        self._back = anyio.Event()

    # -- questions -------------------------------------------------------------------------

    @property
    def away(self) -> bool:
        """The monitor says MongoDB is unreachable now."""
        return self._away_since is not None

    def reclaim_allowed(self) -> bool:
        """No failure seen for a lease's length: expired leases may be taken over."""
        return time.monotonic() - self._last_failure > self._lease_s

    def explains(self, expired: datetime | None) -> bool:
        """Whether a lease that ran out at ``expired`` did so around an outage this reactor saw."""
        return self._outages.cover(expired)

    async def wait_back(self) -> None:
        """Return when MongoDB answers again after this reactor saw it away."""
        await self._back.wait()

    def _on_loop(self, writable: bool) -> None:
        callback: Callable[[], None] = self.came_back if writable else self.went_away
        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
            self._loop.call_soon_threadsafe(callback)


class _Monitor(monitoring.ServerListener):
    """A PyMongo server listener reporting writable/unwritable transitions."""

    def __init__(self, report: Callable[[bool], None]) -> None:
        self._report = report

    def opened(self, event: monitoring.ServerOpeningEvent) -> None:
        return None

    def closed(self, event: monitoring.ServerClosedEvent) -> None:
        return None

    def description_changed(self, event: monitoring.ServerDescriptionChangedEvent) -> None:
        before = event.previous_description.is_writable
        after = event.new_description.is_writable
        if before != after:
            self._report(after)


class Outages:
    """The recent periods MongoDB was away, on the server's clock (that of the lease dates)."""

    def __init__(self, lease_s: float, now: Callable[[], datetime]) -> None:
        self._margin = timedelta(seconds=lease_s)
        self._now = now
        self._periods: deque[tuple[datetime, datetime | None]] = deque(maxlen=OUTAGES_KEPT)

    def open(self) -> None:
        if not self._periods or self._periods[-1][1] is not None:
            self._periods.append((self._now(), None))

    def close(self) -> None:
        if self._periods and self._periods[-1][1] is None:
            self._periods[-1] = (self._periods[-1][0], self._now())

    def add(self, lasted_s: float) -> None:
        """A failed call: MongoDB was away for the ``lasted_s`` before now."""
        end = self._now()
        start = end - timedelta(seconds=max(0.0, lasted_s))
        if self._periods:
            last_start, last_end = self._periods[-1]
            if last_end is None:
                return  # inside an open period
            if start <= last_end + self._margin:
                self._periods[-1] = (min(last_start, start), max(last_end, end))
                return
        self._periods.append((start, end))

    def cover(self, expired: datetime | None) -> bool:
        if expired is None:
            return False
        return any(
            start - self._margin <= expired <= (end or self._now()) + self._margin
            for start, end in self._periods
        )
