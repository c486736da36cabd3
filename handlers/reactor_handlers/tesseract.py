"""Running the ``tesseract`` binary once, with the page it is on reported as it goes.

For a multi-page TIFF Tesseract writes ``Page N`` to standard error as it starts page ``N``;
:func:`run_tesseract` reads that stream line by line (no polling) and calls ``on_page(N)``. The
command line is pytesseract's, and so is the binary (``pytesseract.pytesseract.tesseract_cmd``).
The process stays in its worker's process group, so killing a timed-out worker kills it too.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from reactor.errors import InputError, JobTimeout, ToolMissing
from reactor_handlers._lazy import lazy_module

if TYPE_CHECKING:
    import pytesseract
else:  # it imports NumPy (and pandas, when installed): only where OCR runs (``_lazy.py``)
    pytesseract = lazy_module("pytesseract")

_PAGE_LINE = re.compile(r"^Page (\d+)\s*$")


def run_tesseract(
    input_path: Path,
    base: Path,
    *,
    lang: str,
    config: str,
    name: str,
    timeout_s: float,
    on_page: Callable[[int], None] | None = None,
) -> None:
    """Run Tesseract on ``input_path``, writing ``base.<ext>`` outputs.

    ``InputError`` names ``name`` when Tesseract fails; ``JobTimeout`` after ``timeout_s``.
    """
    proc = _start(input_path, base, lang=lang, config=config)
    timed_out = threading.Event()

    def stop() -> None:
        timed_out.set()
        proc.kill()

    timer = threading.Timer(timeout_s, stop)
    timer.start()
    with proc:  # closes the pipe and waits for the process, whatever happens
        try:
            errors = _read_stderr(proc, on_page)
        except BaseException:
            proc.kill()  # a failing progress report must not leave Tesseract running
            raise
        finally:
            timer.cancel()
    if timed_out.is_set():
        raise JobTimeout(timeout_s)
    if proc.returncode != 0:
        message = " ".join(errors).strip() or f"exit status {proc.returncode}"
        raise InputError(f"tesseract failed on {name}: {message}")


def _start(input_path: Path, base: Path, *, lang: str, config: str) -> subprocess.Popen[str]:
    """Start Tesseract (``ToolMissing`` when it is not installed here)."""
    command = [
        pytesseract.pytesseract.tesseract_cmd,
        str(input_path),
        str(base),
        "-l",
        lang,
        *shlex.split(config),
    ]
    # One thread per Tesseract: the pool runs one process per core (OpenMP spinning is costly).
    env = {**os.environ, "OMP_THREAD_LIMIT": os.environ.get("OMP_THREAD_LIMIT", "1")}
    try:
        return subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            errors="replace",
            env=env,
        )
    except FileNotFoundError as exc:
        raise ToolMissing(
            f"tesseract is not installed on this machine ({exc.filename} not found): install "
            "tesseract-ocr (scripts/system-deps.sh does), or run OCR jobs on a reactor that has it"
        ) from None


def _read_stderr(proc: subprocess.Popen[str], on_page: Callable[[int], None] | None) -> list[str]:
    """Call ``on_page`` for each ``Page N`` line; return the other lines (the error message)."""
    others: list[str] = []
    assert proc.stderr is not None
    for line in proc.stderr:
        match = _PAGE_LINE.match(line)
        if match is None:
            others.append(line.strip())
        elif on_page is not None:
            on_page(int(match.group(1)))
    return others
