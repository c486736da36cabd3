"""Helpers shared by the image-handler tests: known texts, job contexts, hand-made bad images."""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable
from pathlib import Path

from reactor.handler import JobContext

SHORT_TEXT = "Quick brown foxes jump over lazy dogs."
SECOND_TEXT = "Every page gets its own number."
SMALL_PAGE_IN = (5.0, 1.0)


def make_ctx(workdir: Path, max_image_pixels: int = 100_000_000) -> JobContext:
    """A job context whose job directory is ``workdir``."""
    return JobContext(
        job_id="test-job",
        command="test",
        attempt=1,
        workdir=workdir,
        settings={"max_image_pixels": max_image_pixels},
    )


def normalise(text: str) -> str:
    """``text`` with every run of whitespace turned into one space."""
    return " ".join(text.split())


def png_bytes(width: int, height: int) -> bytes:
    """A white 8-bit grayscale PNG built by hand, so that sizes PIL refuses to write (0) work."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        checksum = struct.pack(">I", zlib.crc32(kind + data))
        return struct.pack(">I", len(data)) + kind + data + checksum

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    rows = b"".join(b"\0" + b"\xff" * width for _ in range(height))
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


# name -> (how to make the input file's bytes from a valid page's bytes, what the message says)
BAD_IMAGES: dict[str, tuple[Callable[[bytes], bytes], str]] = {
    "text-named-png": (lambda _: b"just some text, not pixels\n", "is not an image"),
    "truncated-png": (lambda page: page[: len(page) // 2], "is truncated or corrupt"),
    "zero-bytes": (lambda _: b"", "is empty (0 bytes)"),
    "zero-by-zero": (lambda _: png_bytes(0, 0), "is an empty image (0x0 pixels)"),
    "one-by-zero": (lambda _: png_bytes(1, 0), "is an empty image (1x0 pixels)"),
}


LABEL_TEXT = "Sample 0815 grade A"


def render_label(
    text: str, path: Path, *, pad_px: tuple[int, int] = (10, 2), seed: int = 1
) -> Path:
    """A one-line label: dark text on noisy grey, the ink ``pad_px`` (x, y) from the edges.

    DejaVu Sans 20 px at 300 dpi; the background is grey 165 with Gaussian noise (sigma 14),
    the ink 45 (sigma 12), drawn from a seeded generator so that each run sees the same pixels.
    """
    import numpy as np
    from PIL import Image, ImageDraw, ImageFont
    from reactor_handlers.samples import DEJAVU_SANS

    font = ImageFont.truetype(str(DEJAVU_SANS), 20)
    left, top, right, bottom = font.getbbox(text)
    size = (right - left + 2 * pad_px[0], bottom - top + 2 * pad_px[1])
    stencil = Image.new("L", size, 0)
    ImageDraw.Draw(stencil).text((pad_px[0] - left, pad_px[1] - top), text, fill=255, font=font)
    ink = np.asarray(stencil) > 127
    rng = np.random.default_rng(seed)
    grey = rng.normal(165, 14, size=ink.shape)
    grey[ink] = rng.normal(45, 12, size=int(ink.sum()))
    Image.fromarray(np.clip(grey, 0, 255).astype(np.uint8)).save(path, dpi=(300, 300))
    return path
