"""A reactor serving inside an integration test, stopped when the test's block ends."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio

from reactor.config import Settings
from reactor.registry import Registry
from reactor.service import Reactor, Service


@asynccontextmanager
async def running(
    settings: Settings, registry: Registry | None = None, **overrides: Any
) -> AsyncIterator[Service]:
    """A reactor serving in the background of the test's task; stopped on exit."""
    if overrides:
        settings = settings.model_copy(update=overrides)
    async with anyio.create_task_group() as tg:
        reactor: Service = await tg.start(Reactor(settings, registry=registry).serve)
        try:
            yield reactor
        finally:
            reactor.stop()
