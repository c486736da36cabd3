"""The bench's no-op for ``reactor run`` (``REACTOR_HANDLER_MODULES``).

``echo_stamped`` is ``echo`` (on the loop, arguments back unchanged) that also returns the
monotonic time read on its first line: the moment the handler started, in the clock every process
on the machine shares (``CLOCK_MONOTONIC``), so a client can subtract its own insert time from it.
The Celery peer's task (``peer/celery_app.py``) does the same.
"""

from __future__ import annotations

import time
from typing import Any


async def echo_stamped(**args: Any) -> dict[str, Any]:
    """Return the arguments and ``handler_t``, the monotonic time at the handler's start."""
    handler_t = time.monotonic()
    return {**args, "handler_t": handler_t}
