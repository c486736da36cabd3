"""Handlers that log, print, burn CPU and take memory, for the job-log and cost tests
(top-level, so the CPU pool can import them)."""

from __future__ import annotations

import logging
import subprocess
import sys
import time
from typing import Any

import anyio

from reactor.handler import JobContext, handler
from reactor.registry import Registry, build_handler


async def loud_loop(ctx: JobContext, tag: str, lines: int = 1, pause_s: float = 0.0) -> str:
    """Log through ctx.log, a library logger and print, ``lines`` times each."""
    for i in range(lines):
        ctx.log.info("from_handler", tag=tag, i=i)
        logging.getLogger("some.library").warning("library line %s %d", tag, i)
        print(f"printed {tag} {i}")
        await anyio.sleep(pause_s)
    return tag


@handler(runs="thread")
def loud_thread(ctx: JobContext, tag: str, lines: int = 1, pause_s: float = 0.0) -> str:
    """The same from a worker thread."""
    for i in range(lines):
        ctx.log.info("from_handler", tag=tag, i=i)
        logging.getLogger("some.library").warning("library line %s %d", tag, i)
        print(f"printed {tag} {i}")
        time.sleep(pause_s)
    return tag


@handler(runs="process")
def loud_process(ctx: JobContext, tag: str) -> str:
    """The same from a CPU pool worker, plus a line printed without its newline."""
    ctx.log.info("from_handler", tag=tag, i=0)
    logging.getLogger("some.library").warning("library line %s %d", tag, 0)
    print(f"printed {tag} 0")
    sys.stdout.write(f"unterminated {tag}")
    return tag


@handler(runs="process")
def hog(mb: int) -> int:
    """Hold ``mb`` MB, touched, for a moment."""
    block = bytearray(mb * 2**20)
    for i in range(0, len(block), 4096):
        block[i] = 1
    return len(block)


@handler(runs="process")
def child_hog(mb: int) -> int:
    """A child process (as tesseract is) that holds ``mb`` MB."""
    code = f"b = bytearray({mb} * 2**20)\nfor i in range(0, len(b), 4096): b[i] = 1"
    subprocess.run([sys.executable, "-c", code], check=True)
    return mb


@handler(runs="process")
def burn(seconds: float) -> float:
    """Spin the CPU for ``seconds`` of process time."""
    started = time.process_time()
    while time.process_time() - started < seconds:
        pass
    return seconds


@handler(runs="process")
def child_burn(seconds: float) -> float:
    """A child process that spins the CPU for ``seconds``."""
    code = f"import time\ns = time.process_time()\nwhile time.process_time() - s < {seconds}: pass"
    subprocess.run([sys.executable, "-c", code], check=True)
    return seconds


def registry(extra: dict[str, Any] | None = None) -> Registry:
    funcs: dict[str, Any] = {
        "loud_loop": loud_loop,
        "loud_thread": loud_thread,
        "loud_process": loud_process,
        "hog": hog,
        "child_hog": child_hog,
        "burn": burn,
        "child_burn": child_burn,
        **(extra or {}),
    }
    return Registry(build_handler(name, fn) for name, fn in funcs.items())
