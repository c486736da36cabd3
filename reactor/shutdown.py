"""Stopping: the switch that ``reactor run``'s signals (or a test) flip, and the drain it starts.

A stop request stops claiming and drains: running jobs may finish within ``drain_s``; then they
are stopped and handed back (queued again, attempt not charged), with ``HAND_BACK_S`` for that. A
forced stop (a second signal) cancels everything at once and hands nothing back: the leases of
jobs still running expire, and other reactors take them.
"""

from __future__ import annotations

import anyio

from reactor.admission import Admission
from reactor.cancel import CancelBoard, Reason
from reactor.driver import Calls
from reactor.logging import get_logger

log = get_logger("reactor.shutdown")

HAND_BACK_S = 2.0  # how long stopped jobs may take to be handed back


class Shutdown:
    """The stop switch; create it inside the event loop."""

    def __init__(self) -> None:
        self._requested = anyio.Event()
        self._forced = anyio.Event()

    @property
    def requested(self) -> bool:
        """A stop was asked for: claim nothing more (``/readyz`` says draining)."""
        return self._requested.is_set()

    @property
    def forced(self) -> bool:
        return self._forced.is_set()

    def request(self, *, force: bool = False) -> None:
        self._requested.set()
        if force:
            self._forced.set()

    async def wait(self) -> None:
        await self._requested.wait()

    async def wait_forced(self) -> None:
        await self._forced.wait()


async def drain(
    admission: Admission, board: CancelBoard, calls: Calls, *, drain_s: float, forced: bool
) -> None:
    """Let running jobs finish within ``drain_s``; then stop them and hand them back."""
    log.info("reactor_draining", in_flight=admission.in_flight, drain_s=drain_s)
    with anyio.move_on_after(drain_s):
        await admission.until_idle()
    if admission.in_flight and not forced:
        stopped = board.stop_all(Reason.SHUTDOWN)
        log.warning("reactor_handing_back", jobs=stopped)
        with anyio.move_on_after(HAND_BACK_S):
            await admission.until_idle()
    calls.shutting_down = True  # what remains (stream, token) gets a second at most
