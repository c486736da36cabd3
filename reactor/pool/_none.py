"""The pool of a reactor that serves no process handlers: nothing to start, nothing to run."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from reactor.errors import HandlerFailed


class NoPool:
    """Stands where a :class:`~reactor.pool.CpuPool` would, when no handler runs in one."""

    workers = 0
    busy = 0
    healthy = True

    @property
    def restarts(self) -> Mapping[str, int]:
        return {}

    async def start(self) -> None:
        return None

    async def run(self, fn: Any, kwargs: dict[str, Any], **options: Any) -> Any:
        raise HandlerFailed("no CPU pool is running", type_name="reactor.PoolMissing")

    async def aclose(self) -> None:
        return None
