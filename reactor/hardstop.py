"""The last guarantee of "stopping always stops": a thread that ends the process at a deadline.

``reactor run`` arms it at the first SIGTERM for ``REACTOR_DRAIN_S`` + a few seconds, and at a
second signal for a moment more. Normally the reactor has long exited by then; when it has not
(MongoDB away during the hand-back, a driver call that will not return, an abandoned thread),
the thread logs ``reactor_stop_forced`` and exits, so a supervisor never waits on a reactor that
was told to stop. Leases of jobs not handed back expire and the jobs run elsewhere.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading

from reactor.logging import get_logger

log = get_logger("reactor.hardstop")


def arm(seconds: float, *, code: int = 0, reason: str = "stop requested") -> threading.Timer:
    """Exit the process with ``code`` in ``seconds`` unless it has exited before."""
    timer = threading.Timer(seconds, _exit, args=(code, reason, seconds))
    timer.daemon = True
    timer.start()
    return timer


def _exit(code: int, reason: str, seconds: float) -> None:
    log.warning("reactor_stop_forced", reason=reason, after_s=seconds, exit_code=code)
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)
