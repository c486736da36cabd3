"""The CLI reports configuration and connection problems as one clear line, exit code 2."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from reactor.cli import main, reactor_error
from reactor.errors import ConfigError


def test_an_invalid_setting_is_one_line_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A bad REACTOR_ variable stops `reactor run` with exit 2 and the variable's name."""
    monkeypatch.setenv("REACTOR_MAX_JOBS", "zero")
    assert main(["run"]) == 2
    assert "REACTOR_MAX_JOBS='zero'" in capsys.readouterr().err


def test_an_unreachable_mongodb_stops_startup_in_bounded_time() -> None:
    """No MongoDB at the URI: `reactor run` exits 2 after the connect timeout, saying what to do.

    Run as a real process: the driver leaves a refused socket for the garbage collector.
    """
    env = {
        **os.environ,
        "REACTOR_MONGO_URI": "mongodb://127.0.0.1:9/",
        "REACTOR_CONNECT_TIMEOUT_S": "0.5",
        "REACTOR_HTTP_PORT": "0",
    }
    proc = subprocess.run(
        [sys.executable, "-m", "reactor.cli", "run"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 2
    err = proc.stderr
    assert "cannot reach MongoDB at mongodb://127.0.0.1:9/ within 0.5 s" in err
    assert "reactor dev-mongo" in err
    assert "Traceback" not in err


def test_errors_inside_task_groups_are_unwrapped() -> None:
    """A ConfigError raised inside a task group is still recognised; other errors are not."""
    error = ConfigError("bad")
    assert reactor_error(BaseExceptionGroup("g", [BaseExceptionGroup("h", [error])])) is error
    assert reactor_error(BaseExceptionGroup("g", [error, ValueError("x")])) is None


def test_an_unexpected_exception_in_the_service_ends_the_process_loudly(tmp_path: object) -> None:
    """Crash-only: a bug escaping a core task is logged with its traceback and the process
    exits 70 at once, so a supervisor restarts it instead of it idling half-alive."""
    script = """
import sys
import reactor.service
from reactor import cli

async def broken(self, **kw):
    raise RuntimeError("a bug in a core task")

reactor.service.Reactor.serve = broken
sys.exit(cli.main(["run"]))
"""
    env = {**os.environ, "REACTOR_HTTP_PORT": "0", "REACTOR_LOG_FORMAT": "json"}
    proc = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 70, proc.stdout + proc.stderr
    assert '"event": "reactor_crashed"' in proc.stdout
    assert "a bug in a core task" in proc.stdout
