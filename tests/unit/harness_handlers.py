"""Handlers the harness tests serve (top-level, so that pool workers can import them)."""

from __future__ import annotations

from pathlib import Path

from reactor import handler


async def shout(text: str) -> str:
    """Upper-case the text, on the loop."""
    return text.upper()


def fail_loudly(reason: str) -> None:
    """Raise, in a thread."""
    raise ValueError(reason)


def write_note(text: str, out: Path = Path("note.txt")) -> str:
    """Write a file in the job directory (a Path default) from a thread."""
    out.write_text(text)
    return out.name


@handler(runs="process")
def square(n: int) -> int:
    """CPU work, in the pool."""
    return n * n
