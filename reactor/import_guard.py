"""A deadline on importing handlers at startup (``reactor run``, ``reactor handlers``).

An ``app.py`` shaped like the polling loop it replaces runs that loop when it is imported and
never returns, so the reactor would hang before its first log line. The import still runs in the
calling (main) thread, as module code may expect (signal handlers, thread-local state); a
watchdog thread waits beside it. Past the deadline the watchdog names the module, the line it is
stuck at and the fix (``if __name__ == "__main__":``), and ends the process with the startup
error code: a blocked thread cannot be interrupted, and a process that hangs is the worst outcome.

That thread needs the GIL. Native code that holds it forever (a regular expression that never
ends, say) would keep it from running, so ``faulthandler``, whose watchdog is native, backs it
up: a moment later it dumps every thread's stack, the stuck module's line among them, and exits
with code 1.
"""

from __future__ import annotations

import ast
import contextlib
import faulthandler
import os
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from types import FrameType

from reactor.config import env_name

BACKSTOP_S = 2.0  # after the deadline, faulthandler ends a process whose watchdog cannot run
TIMEOUT_SETTING = env_name("handler_import_timeout_s")


class ImportGuard:
    """Ends the process (``exit_code``) if one import takes longer than ``timeout_s``."""

    def __init__(self, timeout_s: float, *, exit_code: int) -> None:
        self.timeout_s = timeout_s
        self.exit_code = exit_code

    @contextlib.contextmanager
    def watching(self, what: str) -> Iterator[None]:
        """Bound the import done inside the block, in this thread; ``what`` names it."""
        done = threading.Event()
        watchdog = threading.Thread(
            target=self._watch,
            args=(what, threading.get_ident(), done),
            name="reactor-import-deadline",
            daemon=True,
        )
        backstop = False
        try:
            watchdog.start()
            backstop = _arm_backstop(self.timeout_s + BACKSTOP_S)
            yield
        finally:
            done.set()  # first: whatever happens here, the watchdog must not fire later
            if backstop:
                faulthandler.cancel_dump_traceback_later()

    def _watch(self, what: str, importer: int, done: threading.Event) -> None:
        if done.wait(self.timeout_s):
            return
        frame = sys._current_frames().get(importer)
        message = stuck_message(what, self.timeout_s, stuck_at(frame))
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.write(f"reactor: {message}\n")
            sys.stderr.flush()
        os._exit(self.exit_code)


def _arm_backstop(seconds: float) -> bool:
    """Arm faulthandler's exit on the process's real standard error; False where there is none
    (a caller that replaced ``sys.stderr``, such as pytest, still has file descriptor 2)."""
    stream = sys.__stderr__
    try:
        if stream is None:
            return False
        faulthandler.dump_traceback_later(seconds, exit=True, file=stream)
    except (OSError, ValueError, AttributeError):  # no usable file descriptor
        return False
    return True


def stuck_message(what: str, timeout_s: float, where: str | None) -> str:
    """What to tell the user about an import that did not finish (pure)."""
    at = f", stuck at {where}" if where else ""
    return (
        f"{what} did not finish importing within {timeout_s:g} s{at}. It may run a loop at "
        "import time (the polling loop it replaces?) or wait for something: importing a "
        "handler module must only define its functions. Put that code under "
        '`if __name__ == "__main__":` at the end of the file, so that it runs only when the file '
        f"is run as a script. A module that is only slow to import: raise {TIMEOUT_SETTING}."
    )


def stuck_at(frame: FrameType | None) -> str | None:
    """Where the innermost module-level frame is: the top-level statement that never ends."""
    while frame is not None:
        code = frame.f_code
        if code.co_name == "<module>" and not code.co_filename.startswith("<"):
            now = frame.f_lineno
            start = top_level_statement(code.co_filename, now)
            return f"{code.co_filename} line {start}" + (f" (now at line {now})" * (start != now))
        frame = frame.f_back
    return None


def top_level_statement(path: str, lineno: int) -> int:
    """The first line of the module-level statement of ``path`` that holds line ``lineno``."""
    try:
        tree = ast.parse(Path(path).read_text(), path)
    except (OSError, SyntaxError, ValueError):
        return lineno
    for node in tree.body:
        if node.lineno <= lineno <= (node.end_lineno or node.lineno):
            return node.lineno
    return lineno
