"""Knowing when MongoDB went away and came back, from the driver's own server monitoring.

A change stream or a claim only fails when it happens to run during an outage, and PyMongo
resumes a change stream by itself, so neither tells the reactor reliably that it was cut off. The
driver's server monitor does: the server's description stops being writable when the reactor
loses it, and becomes writable again when it is back (a failover, a restart of an empty server,
the end of a network cut). The reactor then ensures its indexes again, catches up on every claim
tier, and holds back reclaims of expired leases for a lease's length, so that owners that
survived the outage renew theirs before anyone takes their jobs.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

from pymongo import monitoring


class Reconnects(monitoring.ServerListener):
    """A ``pymongo`` server listener calling ``on_down`` and ``on_up`` on the reactor's loop."""

    def __init__(self) -> None:
        self.on_down: Callable[[], None] = lambda: None
        self.on_up: Callable[[], None] = lambda: None
        self._loop: asyncio.AbstractEventLoop | None = None

    def bind(self, on_down: Callable[[], None], on_up: Callable[[], None]) -> None:
        """Deliver to these callbacks, on the running event loop."""
        self._loop = asyncio.get_running_loop()
        self.on_down, self.on_up = on_down, on_up

    def opened(self, event: monitoring.ServerOpeningEvent) -> None:
        return None

    def closed(self, event: monitoring.ServerClosedEvent) -> None:
        return None

    def description_changed(self, event: monitoring.ServerDescriptionChangedEvent) -> None:
        before = event.previous_description.is_writable
        after = event.new_description.is_writable
        if before and not after:
            self._deliver(self.on_down)
        elif after and not before:
            self._deliver(self.on_up)

    def _deliver(self, callback: Callable[[], None]) -> None:
        loop = self._loop
        if loop is None:
            return
        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
            loop.call_soon_threadsafe(callback)
