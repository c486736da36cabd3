"""The built-in echo and sleep handlers, called directly."""

from __future__ import annotations

import threading
import time
from typing import ClassVar

import anyio
import pytest
from reactor_handlers import basic
from reactor_handlers.basic import echo, sleep


async def test_echo_returns_its_arguments() -> None:
    """echo hands back exactly the arguments it was given."""
    assert await echo(a=1, b=[2]) == {"a": 1, "b": [2]}


@pytest.mark.parametrize("blocking", [False, True])
async def test_sleep_waits_and_reports(blocking: bool) -> None:
    """sleep waits at least the given time, on the loop or in a thread."""
    started = time.monotonic()
    assert await sleep(0.05, blocking=blocking) == {"slept_s": 0.05}
    assert time.monotonic() - started >= 0.05


@pytest.mark.parametrize("blocking", [False, True])
async def test_sleep_honours_a_timeout(blocking: bool) -> None:
    """A 60 s sleep under a 0.2 s timeout ends with the timeout, blocking or not."""
    started = time.monotonic()
    with pytest.raises(TimeoutError), anyio.fail_after(0.2):
        await sleep(60, blocking=blocking)
    assert time.monotonic() - started < 30  # far below 60 s even on a loaded machine


_RealEvent = threading.Event


class _RecordingEvent(_RealEvent):
    """A threading.Event that remembers when a wait on it has returned; the sleep's own Events
    go to ``made``, a list of the test's own (see ``sleep_events``)."""

    made: ClassVar[list[_RecordingEvent]]

    def __init__(self) -> None:
        super().__init__()
        self.returned = _RealEvent()

    def wait(self, timeout: float | None = None) -> bool:
        if timeout == 60:  # the sleep's own wait (threads make Events of their own too)
            type(self).made.append(self)
        try:
            return super().wait(timeout)
        finally:
            self.returned.set()


@pytest.fixture
def sleep_events(monkeypatch: pytest.MonkeyPatch) -> list[_RecordingEvent]:
    """The Events the sleep handler waits on during this test (a fresh list per test)."""
    made: list[_RecordingEvent] = []
    recording = type("_RecordingEventOfThisTest", (_RecordingEvent,), {"made": made})
    monkeypatch.setattr(basic.threading, "Event", recording)
    return made


async def test_a_timed_out_blocking_sleep_leaves_no_thread_sleeping(
    sleep_events: list[_RecordingEvent],
) -> None:
    """The abandoned thread is woken at the timeout instead of sleeping its 60 s to the end."""
    with pytest.raises(TimeoutError), anyio.fail_after(0.2):
        await basic.sleep(60, blocking=True)
    (event,) = sleep_events
    assert await anyio.to_thread.run_sync(event.returned.wait, 30)
