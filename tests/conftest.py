"""Suite-wide hooks: repeated skip reasons are reported once, with a count; plain tracebacks.

A skip decided at setup (a fixture calling ``pytest.skip``, such as the real replica-set backend
without Docker, or a skip mark) is charged by pytest to each test's own line, so the summary lists
one line per test for the same reason. Such skips are re-labelled with the test's folder instead,
and the summary groups them into one line with a count: ``SKIPPED [34] tests/integration: no
Docker engine answers ...``.
"""

from __future__ import annotations

from collections.abc import Generator
from pathlib import Path
from typing import Any

import pytest
import structlog

ROOT = Path(__file__).resolve().parent.parent


def pytest_configure(config: pytest.Config) -> None:
    """Tests that never configure logging get structlog's console output with plain tracebacks.

    Unconfigured, structlog renders tracebacks with rich whenever rich is importable (the dev
    extra brings it, through schemathesis), and rich highlights a 10 MB exception message for
    minutes; ``reactor run`` configures its own logging and is not affected.
    """
    processors = list(structlog.get_config()["processors"])
    if processors and isinstance(processors[-1], structlog.dev.ConsoleRenderer):
        processors[-1] = structlog.dev.ConsoleRenderer(
            exception_formatter=structlog.dev.plain_traceback
        )
        structlog.configure(processors=processors)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, Any, Any]:
    """Give setup-time skips the test's folder as their place, so identical reasons group."""
    report = yield
    if report.when == "setup" and report.skipped and isinstance(report.longrepr, tuple):
        _, _, reason = report.longrepr
        folder = Path(str(item.path)).parent
        place = folder.relative_to(ROOT) if folder.is_relative_to(ROOT) else folder
        report.longrepr = (str(place), None, reason)
    return report
