"""Handlers used by the registry and dispatch unit tests (importable by entry-point value)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from reactor.handler import JobContext, handler


async def add(a: int, b: int = 1) -> int:
    """Add two integers."""
    return a + b


def read_file(ctx: JobContext, path: Path, mode: Literal["text", "size"] = "text") -> Any:
    """Read a file inside the job directory."""
    return path.read_text() if mode == "text" else path.stat().st_size


@handler(runs="process", timeout_s=5, max_concurrency=2, version="9.9")
def crunch(n: int) -> int:
    """CPU work."""
    return sum(range(n))


async def anything(**kwargs: Any) -> dict[str, Any]:
    """Accept any named argument."""
    return kwargs


def positional_only(a: int, /) -> int:
    """Cannot be called with named args."""
    return a


def with_paths(
    pages: list[Path],
    pair: tuple[Path, ...] = (),
    named: dict[str, Path] | None = None,
    maybe: Path | None = None,
    out: Path = Path("edges.png"),
    report: Path = "report.txt",  # type: ignore[assignment]  # a str default, validated as a Path
) -> dict[str, Any]:
    """Path arguments of every shape, with defaults."""
    return {"pages": pages, "pair": pair, "named": named, "maybe": maybe, "out": out}
