"""An app.py whose polling loop runs at import ends ``reactor handlers`` / ``reactor run`` with
exit 2 and a message naming it, instead of a silent hang; the pool's imports are bounded too."""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
import textwrap
import threading
import uuid
from pathlib import Path

import pytest

from reactor.errors import JobTimeout
from reactor.import_guard import ImportGuard, stuck_message, top_level_statement
from reactor.pool import CpuPool
from tests.unit import pool_tasks

# The end of the migration guide's app.py: functions, then the loop the reactor replaces.
LOOPING_APP = '''\
"""Thumbnails for the polling loop."""
import time


def make_thumbnail(size: int) -> dict:
    return {"size": size}


def find_jobs() -> list:
    return []


while True:
    for job in find_jobs():
        make_thumbnail(**job["args"])
    time.sleep(5)
'''
LOOP_LINE = 13  # `while True:`
GUARDED_APP = LOOPING_APP.replace("while True:", 'if __name__ == "__main__":\n  while True:')
NATIVE_APP = """\
import re


def ping() -> str:
    return "pong"


re.match(r"(a+)+$", "a" * 64 + "b")  # never ends, and never releases the GIL
"""


def reactor(folder: Path, *argv: str, **env: str) -> subprocess.CompletedProcess[str]:
    """``reactor ARGV`` in ``folder``, with a 5 s import deadline (the default is 10 s; the
    built-in entry points, OpenCV's among them, take a second or two on a loaded machine)."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("REACTOR_")}
    clean |= {"REACTOR_HANDLER_IMPORT_TIMEOUT_S": "5", "REACTOR_LOG_FORMAT": "json", **env}
    return subprocess.run(
        [sys.executable, "-m", "reactor.cli", *argv],
        cwd=folder,
        env=clean,
        capture_output=True,
        text=True,
        timeout=120,  # a hang, not a speed limit
        check=False,
    )


def assert_names_the_loop(stderr: str, folder: Path) -> None:
    assert stderr.startswith("reactor: handler module 'app.py' (REACTOR_HANDLER_MODULES) did not ")
    assert f"stuck at {folder / 'app.py'} line {LOOP_LINE}" in stderr
    assert 'Put that code under `if __name__ == "__main__":`' in stderr
    assert "REACTOR_HANDLER_IMPORT_TIMEOUT_S" in stderr
    assert "Traceback" not in stderr


def test_reactor_handlers_names_a_module_that_loops_at_import(tmp_path: Path) -> None:
    """reactor handlers exits 2 with one message: the module, the loop's line, the fix."""
    (tmp_path / "app.py").write_text(LOOPING_APP)
    done = reactor(tmp_path, "handlers", "--handler-modules", "app.py")
    assert done.returncode == 2, done.stderr
    assert_names_the_loop(done.stderr, tmp_path)


def test_reactor_run_stops_before_connecting(tmp_path: Path) -> None:
    """reactor run exits 2 the same way, before it even tries MongoDB (here unreachable)."""
    (tmp_path / "app.py").write_text(LOOPING_APP)
    done = reactor(
        tmp_path,
        "run",
        "--handler-modules",
        "app.py",
        REACTOR_MONGO_URI="mongodb://127.0.0.1:9/?replicaSet=rs0",
        REACTOR_CONNECT_TIMEOUT_S="60",
    )
    assert done.returncode == 2, done.stderr
    assert_names_the_loop(done.stderr, tmp_path)
    assert "MongoDB" not in done.stderr


def test_the_one_line_fix_serves_the_functions(tmp_path: Path) -> None:
    """The loop under `if __name__ == "__main__":` (the guide's change): the commands load."""
    (tmp_path / "app.py").write_text(GUARDED_APP)
    done = reactor(tmp_path, "handlers", "--handler-modules", "app.py")
    assert done.returncode == 0, done.stderr
    rows = [line.split()[:2] for line in done.stdout.splitlines()]
    assert ["make_thumbnail", "process"] in rows
    assert "find_jobs" in done.stdout


def test_native_code_that_holds_the_gil_is_ended_by_faulthandler(tmp_path: Path) -> None:
    """A regex that never ends keeps the watchdog thread out; faulthandler exits with its stack."""
    (tmp_path / "app.py").write_text(NATIVE_APP)
    done = reactor(tmp_path, "handlers", "--handler-modules", "app.py")
    assert done.returncode == 1, done.stderr
    assert done.stderr.startswith("Timeout (")
    assert f'File "{tmp_path / "app.py"}", line 8 in <module>' in done.stderr


def test_the_message_points_at_the_module_level_statement(tmp_path: Path) -> None:
    """The line reported is the top-level statement that never ends, not a line inside it."""
    path = tmp_path / "app.py"
    path.write_text(LOOPING_APP)
    assert top_level_statement(str(path), 16) == LOOP_LINE
    assert top_level_statement(str(path), 5) == 5
    message = stuck_message("handler module 'app.py'", 10, f"{path} line 13 (now at line 16)")
    assert message.startswith(
        f"handler module 'app.py' did not finish importing within 10 s, stuck at {path} line 13"
    )


async def test_a_pool_worker_stuck_importing_a_handler_module_is_stopped_at_the_job_timeout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Workers import a handler's module by name when a task arrives, inside the task's timeout:
    a module that blocks only there fails that job with JobTimeout, and the pool goes on."""
    name = f"worker_loop_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{name}.py").write_text(
        textwrap.dedent(
            """\
            import multiprocessing
            import time


            def double(n: int) -> int:
                return 2 * n


            while multiprocessing.parent_process() is not None:  # only in a pool worker
                time.sleep(1)
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    module = __import__(name)
    async with CpuPool(1) as pool:
        with pytest.raises(JobTimeout):
            await pool.run(module.double, {"n": 2}, timeout_s=2)
        assert await pool.run(pool_tasks.echo, {"value": 7}, timeout_s=60) == 7


@pytest.mark.parametrize("raises", [False, True])
def test_in_process_the_watchdog_ends_with_the_import(raises: bool) -> None:
    """Where sys.stderr has no file descriptor (pytest's capture), and whether the import
    returns or raises, the watchdog thread ends with the block: it can never fire later."""
    guard = ImportGuard(60, exit_code=2)
    with (
        contextlib.redirect_stderr(io.StringIO()),
        contextlib.suppress(ImportError),
        guard.watching("handler module 'x'"),
    ):
        if raises:
            raise ImportError("x")
    for thread in threading.enumerate():
        if thread.name == "reactor-import-deadline":
            thread.join(30)
            assert not thread.is_alive()
