"""The dashboard's browser tests' tools: Debian's chromium driven by Playwright, a reactor
serving ``/ui`` on a free port with a token, and the reason to skip where there is no browser."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import anyio
import pytest

from reactor.config import Settings
from reactor.registry import Registry
from tests.integration.procs import free_port
from tests.integration.reactors import running

TOKEN = "dashboard-token"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                  "--disable-background-networking", "--disable-extensions",
                  "--no-first-run"]  # fmt: skip
WAIT_MS = 30_000  # how long an expectation may take on a loaded machine


def browser_missing() -> str | None:
    """Why the browser tests cannot run here, or ``None``."""
    if not os.access(CHROMIUM, os.X_OK):
        return (f"Debian's chromium is not installed at {CHROMIUM} (scripts/system-deps.sh "
                "installs it when run as root)")  # fmt: skip
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "Playwright for Python is not installed (pip install -e '.[dev]')"
    return None


needs_browser = pytest.mark.skipif(browser_missing() is not None, reason=browser_missing() or "")


@contextmanager
def browser_page(port: int) -> Iterator[Any]:
    """A signed-in dashboard page in headless chromium (in this thread)."""
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=WAIT_MS)  # expectations wait as long as actions may
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        try:
            page = browser.new_page()
            page.set_default_timeout(WAIT_MS)
            page.goto(f"http://127.0.0.1:{port}/ui")
            page.fill("#token", TOKEN)
            page.click("button[type=submit]")
            page.wait_for_selector("#counts")
            yield page
        finally:
            browser.close()


@asynccontextmanager
async def serving(settings: Settings, registry: Registry, **overrides: Any) -> AsyncIterator[int]:
    """A reactor with the API token set, serving HTTP on a free loopback port (yielded)."""
    port = free_port()
    async with running(settings, registry, http_host="127.0.0.1", http_port=port,
                       api_token=TOKEN, **overrides):  # fmt: skip
        yield port


async def in_browser(scenario: Callable[[], None]) -> None:
    """Run a (blocking) Playwright scenario in a worker thread; it reaches the test's event loop
    through ``anyio.from_thread``."""
    await anyio.to_thread.run_sync(scenario)
