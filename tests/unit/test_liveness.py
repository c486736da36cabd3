"""Liveness measures progress; the watchdog logs a blocked loop and ends a lasting wedge."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time

from reactor.driver import Calls
from reactor.liveness import WEDGED_EXIT_CODE, Liveness, RunningHandlers


def _liveness(**kw: object) -> Liveness:
    live = Liveness(10.0, Calls(), RunningHandlers(), stream_timeout_s=5.0)
    for key, value in kw.items():
        setattr(live, key, value)
    return live


def test_a_quiet_idle_reactor_is_alive() -> None:
    """No work waiting and nothing running: no problem, however long it has been idle."""
    live = _liveness()
    now = time.monotonic()
    live.tick = now
    live.last_stream_turn = lambda: now
    live.last_claim = lambda: now - 3600
    assert live.problems(now) == []


def test_waiting_work_that_is_not_claimed_is_a_problem() -> None:
    """A raised tier with free slots and no claim for the liveness span means a stuck loop."""
    now = time.monotonic()
    live = _liveness(work_waiting=lambda: True, last_claim=lambda: now - 11, tick=now)
    live.last_stream_turn = lambda: now
    assert live.problems(now) == ["work is waiting but no claim completed for 11 s"]


def test_a_blocked_loop_and_an_overrunning_handler_are_problems() -> None:
    """A loop that has not ticked, and a handler past its timeout, each make liveness fail."""
    now = time.monotonic()
    live = _liveness(tick=now - 12)
    live.last_stream_turn = lambda: now
    with live.handlers.running("j1", "ocr", "process", timeout_s=5):
        later = time.monotonic() + 20
        problems = live.problems(later)
    assert any(problem.startswith("the event loop has been blocked for 3") for problem in problems)
    assert "job j1 runs 15 s past its 5 s timeout" in problems
    assert not any("job j1" in problem for problem in live.problems(later))


def test_a_stream_that_stopped_turning_is_a_problem() -> None:
    """No completed stream step for the liveness span plus its timeout is a problem."""
    now = time.monotonic()
    live = _liveness(tick=now)
    live.last_stream_turn = lambda: now - 16
    assert live.problems(now) == ["the change stream made no step for 16 s"]


def test_the_watchdog_ends_a_process_whose_loop_stays_blocked() -> None:
    """A process told to exit on a wedge ends with code 70 when its loop stays blocked."""
    script = textwrap.dedent(
        """
        import time
        import anyio
        from reactor.driver import Calls
        from reactor.liveness import Liveness, RunningHandlers, Watchdog

        async def main():
            live = Liveness(0.5, Calls(), RunningHandlers(), stream_timeout_s=0.5)
            live.last_stream_turn = time.monotonic
            Watchdog(live, exit_on_wedge=True).start()
            time.sleep(30)  # the loop never ticks again

        anyio.run(main)
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, timeout=60, text=True
    )
    assert proc.returncode == WEDGED_EXIT_CODE, proc.stdout + proc.stderr
    assert "reactor_wedged" in proc.stdout + proc.stderr
