"""A pytest plugin for scripts/fidelity.py: every outcome appended to a JSON-lines file at once.

Loaded with ``-p fidelity_plugin`` and ``FIDELITY_EVENTS=<path>``. Writing as the run goes (not
at the end, as JUnit does) keeps the outcomes of a session that pytest-timeout ends with
``os._exit`` on a hung test: the runner sees which test started and never finished, counts it as
a hang, and runs the rest of the module again.
"""

from __future__ import annotations

import json
import os
from typing import Any

import pytest


def _write(record: dict[str, Any]) -> None:
    with open(os.environ["FIDELITY_EVENTS"], "a", encoding="utf-8") as out:
        out.write(json.dumps(record) + "\n")


def pytest_collection_finish(session: pytest.Session) -> None:
    _write({"collected": [item.nodeid for item in session.items]})


def pytest_runtest_logstart(nodeid: str, location: object) -> None:
    _write({"start": nodeid})


def pytest_internalerror(excrepr: object, excinfo: pytest.ExceptionInfo[BaseException]) -> None:
    """pytest itself broke (CPython 3.11.7 can fail to render a traceback): not a hang."""
    _write({"internal": str(excinfo.value)[:300]})


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    outcome = report.outcome
    if getattr(report, "wasxfail", None) is not None:
        outcome = "skipped"
    _write({"id": report.nodeid, "when": report.when, "outcome": outcome, "why": _why(report)})


def _why(report: pytest.TestReport) -> str:
    if report.passed:
        return ""
    crash = getattr(report.longrepr, "reprcrash", None)
    if crash is not None:
        return str(crash.message).splitlines()[0][:300] if crash.message else "?"
    if isinstance(report.longrepr, tuple):  # a skip: (path, line, reason)
        return str(report.longrepr[2])[:300]
    return str(report.longrepr).strip().splitlines()[-1][:300] if report.longrepr else "?"
