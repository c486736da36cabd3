"""Image input with guards: every bad input becomes an ``InputError`` naming the problem and input.

An image arrives as a path inside the job directory, as ``bytes`` (BSON binary) or as base64 text
(JSON clients). The checks, in order: the input exists and is not empty; PIL identifies it; the
size in its header is not zero and not over ``max_image_pixels`` (checked before any pixel is
decoded); every frame decodes completely (``Image.load()`` catches truncated files).
"""

from __future__ import annotations

import base64
import binascii
import io
import struct
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING

from PIL import Image, ImageSequence, UnidentifiedImageError

from reactor.errors import InputError
from reactor.handler import JobContext
from reactor_handlers._lazy import lazy_module

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt
else:  # imported when an image is first turned into pixels (``_lazy.py``)
    np = lazy_module("numpy")

DEFAULT_MAX_PIXELS = 100_000_000
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_DECODE_ERRORS = (OSError, ValueError, SyntaxError, EOFError, struct.error)


@dataclass(frozen=True)
class ImageSource:
    """Encoded image data: a file (``path``) or bytes (``data``), and a ``name`` for messages."""

    name: str
    path: Path | None = None
    data: bytes | None = None

    @classmethod
    def from_path(cls, path: Path) -> ImageSource:
        """A file source named after the file."""
        return cls(name=path.name, path=path)

    def size_bytes(self) -> int:
        """The encoded size; raises ``InputError`` if the file is missing."""
        if self.path is None:
            return len(self.data or b"")
        if not self.path.is_file():
            raise InputError(f"{self.name} does not exist or is not a file")
        return self.path.stat().st_size

    def head(self, count: int) -> bytes:
        """The first ``count`` encoded bytes."""
        if self.path is None:
            return (self.data or b"")[:count]
        with self.path.open("rb") as file:
            return file.read(count)

    def open(self) -> IO[bytes]:
        """A binary file object over the encoded data."""
        return self.path.open("rb") if self.path is not None else io.BytesIO(self.data or b"")


@dataclass(frozen=True)
class ImageInfo:
    """What the checks learned about an image."""

    name: str
    format: str
    width: int
    height: int
    frames: int
    dpi: tuple[float, float] | None


def source_from_args(
    image: Path | None, image_bytes: bytes | None, image_base64: str | None
) -> ImageSource:
    """The one image source among a handler's three arguments; ``InputError`` unless exactly one."""
    given = [
        name
        for name, value in (
            ("image", image),
            ("image_bytes", image_bytes),
            ("image_base64", image_base64),
        )
        if value is not None
    ]
    if len(given) != 1:
        got = ", ".join(given) if given else "none"
        raise InputError(f"give exactly one of image, image_bytes, image_base64 (got {got})")
    if image is not None:
        return ImageSource.from_path(image)
    if image_bytes is not None:
        return ImageSource(name="image_bytes", data=image_bytes)
    return ImageSource(name="image_base64", data=decode_base64(image_base64 or ""))


def decode_base64(text: str) -> bytes:
    """Decode base64 (whitespace and a ``data:...;base64,`` prefix allowed)."""
    if text.startswith("data:") and "," in text:
        text = text.split(",", 1)[1]
    try:
        return base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError) as error:
        raise InputError(f"image_base64 is not valid base64 ({error})") from error


def max_pixels(ctx: JobContext) -> int:
    """The pixel limit from the job's settings (``max_image_pixels``)."""
    return int(ctx.settings.get("max_image_pixels", DEFAULT_MAX_PIXELS))


@contextmanager
def open_image(source: ImageSource, limit: int) -> Iterator[Image.Image]:
    """Open ``source`` after the existence, emptiness, format and pixel-limit checks.

    Pixels are not decoded yet: use :func:`frames` (or ``load()``) on the result.
    """
    if source.size_bytes() == 0:
        raise InputError(f"{source.name} is empty (0 bytes)")
    _check_png_header(source)
    with source.open() as file, _identify(file, source.name, limit) as image:
        yield image


def frames(image: Image.Image, name: str, limit: int) -> Iterator[Image.Image]:
    """Each frame of ``image`` (pages of a TIFF), size-checked and fully decoded."""
    with _pil_errors(name):
        for frame in ImageSequence.Iterator(image):
            check_size(name, frame.size, limit)
            frame.load()
            yield frame


def inspect_image(source: ImageSource, limit: int) -> ImageInfo:
    """Run every check on ``source``, decoding all of its frames, and describe it."""
    with open_image(source, limit) as image:
        count = sum(1 for _ in frames(image, source.name, limit))
        image.seek(0)
        return _info(source.name, image, count)


def load_first_frame(source: ImageSource, limit: int) -> tuple[Image.Image, ImageInfo]:
    """The first frame of ``source``, decoded and detached from the file, and its info."""
    with open_image(source, limit) as image:
        first = next(frames(image, source.name, limit))
        return first.copy(), _info(source.name, image, getattr(image, "n_frames", 1))


def to_array(image: Image.Image, *, grayscale: bool) -> npt.NDArray[np.uint8]:
    """A ``uint8`` array: ``(h, w)`` gray, or ``(h, w, 3|4)`` RGB(A) keeping any transparency."""
    if image.mode.startswith("I"):
        return _wide_to_8_bit(image)
    if grayscale or image.mode in {"1", "L", "F"}:
        mode = "L"
    elif "A" in image.getbands() or "transparency" in image.info:
        mode = "RGBA"
    else:
        mode = "RGB"
    return np.asarray(image.convert(mode), dtype=np.uint8)


def _wide_to_8_bit(image: Image.Image) -> npt.NDArray[np.uint8]:
    # PIL's convert("L") clips 16-bit values at 255 (a 16-bit scan would turn white); rescale.
    values = np.asarray(image, dtype=np.float64)
    peak = 65535.0 if values.size and values.max() > 255 else 255.0
    return np.clip(values * (255.0 / peak), 0, 255).astype(np.uint8)


def check_size(name: str, size: tuple[int, int], limit: int) -> None:
    """Reject an empty image or one with more than ``limit`` pixels."""
    _check_not_empty(name, size)
    width, height = size
    if width * height > limit:
        raise InputError(
            f"{name} has {width * height} pixels ({width}x{height}), over the limit of {limit}"
        )


def _identify(file: IO[bytes], name: str, limit: int) -> Image.Image:
    with _pil_errors(name):
        # PIL's own bomb guard (warns above MAX_IMAGE_PIXELS, raises above twice it) stays on
        # but must not refuse what our limit allows; our own check below gives the message.
        Image.MAX_IMAGE_PIXELS = max(Image.MAX_IMAGE_PIXELS or 0, limit)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(file)
    try:
        check_size(name, image.size, limit)
    except InputError:
        image.close()
        raise
    return image


def _check_not_empty(name: str, size: tuple[int, int]) -> None:
    if size[0] <= 0 or size[1] <= 0:
        raise InputError(f"{name} is an empty image ({size[0]}x{size[1]} pixels)")


def _info(name: str, image: Image.Image, count: int) -> ImageInfo:
    dpi = image.info.get("dpi")
    return ImageInfo(
        name=name,
        format=image.format or "unknown",
        width=image.width,
        height=image.height,
        frames=count,
        dpi=(float(dpi[0]), float(dpi[1])) if dpi else None,
    )


def _check_png_header(source: ImageSource) -> None:
    # PIL refuses a PNG declaring 0 pixels as "cannot identify"; say what is really wrong.
    head = source.head(24)
    if head.startswith(_PNG_SIGNATURE) and len(head) == 24 and head[12:16] == b"IHDR":
        _check_not_empty(source.name, struct.unpack(">II", head[16:24]))


@contextmanager
def _pil_errors(name: str) -> Iterator[None]:
    try:
        yield
    except Image.DecompressionBombError as error:
        raise InputError(f"{name} is over the pixel limit ({error})") from error
    except UnidentifiedImageError as error:
        raise InputError(f"{name} is not an image (cannot identify image file)") from error
    except _DECODE_ERRORS as error:
        raise InputError(f"{name} is truncated or corrupt ({error})") from error
