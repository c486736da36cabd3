"""Image loading with guards: sources, frames, pixel limits and array conversion."""

from __future__ import annotations

import base64
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from reactor_handlers.images import (
    ImageSource,
    decode_base64,
    inspect_image,
    load_first_frame,
    to_array,
)

from reactor.errors import InputError
from tests.handlers.page_helpers import png_bytes


def test_multi_page_tiff_frames_are_all_checked(two_page_tiff: Path) -> None:
    """Inspecting a two-page TIFF decodes and counts both pages and reads the resolution."""
    info = inspect_image(ImageSource.from_path(two_page_tiff), 10_000_000)
    assert (info.name, info.format, info.frames) == ("two.tif", "TIFF", 2)
    assert info.dpi == pytest.approx((300, 300), abs=0.01)


def test_first_frame_is_detached_from_the_file(two_page_tiff: Path) -> None:
    """The first frame stays usable after its file is closed."""
    frame, info = load_first_frame(ImageSource.from_path(two_page_tiff), 10_000_000)
    assert frame.size == (info.width, info.height)
    assert to_array(frame, grayscale=True).shape == (info.height, info.width)


def test_data_url_base64_is_accepted() -> None:
    """A ``data:`` URL with line breaks in its base64 decodes to the original bytes."""
    payload = png_bytes(3, 2)
    encoded = base64.encodebytes(payload).decode()
    assert decode_base64("data:image/png;base64," + encoded) == payload


def test_header_beyond_pils_own_guard_is_refused_before_decoding() -> None:
    """A header declaring 400 million pixels is refused as over the limit, not decoded."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        checksum = struct.pack(">I", zlib.crc32(kind + data))
        return struct.pack(">I", len(data)) + kind + data + checksum

    header = struct.pack(">IIBBBBB", 20_000, 20_000, 8, 0, 0, 0, 0)
    bomb = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IEND", b"")
    with pytest.raises(InputError, match=r"^bomb\.png is over the pixel limit"):
        inspect_image(ImageSource(name="bomb.png", data=bomb), 1000)


@pytest.mark.parametrize(
    ("mode", "shape"),
    [("RGBA", (2, 3, 4)), ("P", (2, 3, 3)), ("1", (2, 3)), ("I;16", (2, 3))],
)
def test_arrays_keep_colour_and_transparency(mode: str, shape: tuple[int, ...]) -> None:
    """Colour stays RGB, transparency RGBA, and bilevel or 16-bit images become gray."""
    assert to_array(Image.new(mode, (3, 2)), grayscale=False).shape == shape


def test_grayscale_arrays_are_8_bit() -> None:
    """A grayscale request gives one 8-bit channel whatever the mode."""
    pixels = to_array(Image.new("RGB", (3, 2), (255, 255, 255)), grayscale=True)
    assert pixels.dtype == np.uint8
    assert pixels.shape == (2, 3)
    assert int(pixels.min()) == 255


def test_16_bit_images_are_rescaled_not_clipped() -> None:
    """16-bit gray values are scaled into 8 bits, so mid-gray stays mid-gray."""
    wide = Image.fromarray(np.array([[0, 32896, 65535]], dtype=np.uint16))
    assert to_array(wide, grayscale=True).tolist() == [[0, 128, 255]]
