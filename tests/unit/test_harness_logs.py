"""The harness keeps pytest's output clean: its log lines are pytest's captured logs, in the
format ``REACTOR_LOG_FORMAT`` asks for; and its wait bound has the CLI's name."""

from __future__ import annotations

import inspect
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from reactor.cli import build_parser
from reactor.testing.harness import RunningReactor

HERE = Path(__file__).resolve().parent

CONFTEST = """
import threading

BETWEEN = threading.Event()  # set while pytest reports a call phase (its capture is off)
LOGGED = threading.Event()  # set once the reactor's thread has logged in that moment


def pytest_runtest_logreport(report):
    if report.when == "call" and "between_phases" in report.nodeid:
        BETWEEN.set()
        LOGGED.wait(30)
"""

TESTS = """
import anyio
import pytest
from conftest import BETWEEN, LOGGED
from reactor.handler import JobContext
from reactor.testing.fixtures import reactor_harness  # noqa: F401


async def chatty(ctx: JobContext, text: str) -> str:
    ctx.log.info("handler_says", text=text)
    return text.upper()


async def broken(reason: str) -> None:
    raise ValueError(reason)


async def late(ctx: JobContext) -> None:
    await anyio.to_thread.run_sync(BETWEEN.wait, 30)
    ctx.log.warning("handler_says_between_phases")
    LOGGED.set()


@pytest.fixture
def reactor_handlers():
    return {"chatty": chatty, "broken": broken, "late": late}


async def test_fixture(reactor_harness):
    assert (await reactor_harness.submit_and_wait("chatty", {"text": "hi"}))["result"] == "HI"
    assert (await reactor_harness.submit_and_wait("broken", {"reason": "x"}))["status"] == "failed"


async def test_logs_between_phases(reactor_harness):
    await reactor_harness.submit("late")
"""

FAILING = """
from reactor.handler import JobContext
from reactor.testing.harness import running_reactor


async def chatty(ctx: JobContext, text: str) -> str:
    ctx.log.info("handler_says", text=text)
    return text.upper()


async def test_fails_after_a_job():
    async with running_reactor({"chatty": chatty}) as reactor:
        await reactor.submit_and_wait("chatty", {"text": "seen"})
    assert False, "the end"
"""


def run_pytest(folder: Path, log_format: str) -> subprocess.CompletedProcess[str]:
    """pytest -v in a subprocess on ``folder``, with REACTOR_LOG_FORMAT set."""
    (folder / "pytest.ini").write_text(
        "[pytest]\nasyncio_mode = auto\nasyncio_default_fixture_loop_scope = function\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("REACTOR_")}
    env |= {"PYTHONPATH": str(HERE), "REACTOR_LOG_FORMAT": log_format, "HOME": str(folder)}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-v", "-p", "no:cacheprovider", "-W", "error"],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_passing_harness_tests_print_no_log_lines(tmp_path: Path) -> None:
    """Not even a line the reactor's thread logs while pytest reports between two phases (its
    capture is off then) reaches pytest's output."""
    (tmp_path / "conftest.py").write_text(CONFTEST)
    (tmp_path / "test_quiet.py").write_text(TESTS)
    result = run_pytest(tmp_path, "json")
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(r"\b2 passed\b", result.stdout), result.stdout
    for line in (result.stdout + result.stderr).splitlines():
        assert "job_finished" not in line, line
        assert "handler_says" not in line, line


def test_a_failing_test_shows_the_reactors_lines_as_json(tmp_path: Path) -> None:
    """The failure report's captured log holds the reactor's lines as JSON objects."""
    (tmp_path / "test_loud.py").write_text(FAILING)
    result = run_pytest(tmp_path, "json")
    assert result.returncode == 1, result.stdout + result.stderr
    captured = result.stdout.split("Captured log call", 1)[1]
    said = [line for line in captured.splitlines() if "handler_says" in line]
    assert said, captured
    line = json.loads(said[0][said[0].index("{") :])
    assert (line["event"], line["text"], line["level"]) == ("handler_says", "seen", "info")
    assert line["logger"] == "reactor.handler"


@pytest.mark.parametrize("command", ["submit echo", "cancel j1", "retry j1"])
def test_the_wait_bound_has_one_name_in_the_cli_and_in_python(command: str) -> None:
    """--timeout-s is what timeout_s is in Python (submit_and_wait, wait_for); --timeout stays."""
    argv = command.split()
    assert build_parser().parse_args([*argv, "--wait", "--timeout-s", "7"]).timeout_s == 7
    assert build_parser().parse_args([*argv, "--wait", "--timeout", "8"]).timeout_s == 8
    waits = inspect.signature(RunningReactor.submit_and_wait).parameters
    assert "timeout_s" in waits
    assert "timeout_s" in inspect.signature(RunningReactor.wait_for).parameters
