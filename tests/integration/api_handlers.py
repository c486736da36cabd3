"""The commands of the reactor the OpenAPI property tests talk to (a handler module)."""

from __future__ import annotations

from typing import Any


async def echo_args(**args: Any) -> dict[str, Any]:
    """Return the job's args."""
    return args


async def typed(lang: str = "eng", psm: int = 3, dpi: int | None = None) -> str:
    """Take typed arguments with defaults, like ocr."""
    return f"{lang}/{psm}/{dpi}"
