"""The shipped sample page and the page-rendering helpers."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image
from reactor_handlers.samples import make_skewed, render_page, sample_page, sample_text


def test_sample_page_ships_as_a_small_bilevel_300_dpi_page() -> None:
    """The packaged page is a 1-bit US Letter image at 300 dpi under 150 KB."""
    path = sample_page()
    assert path.stat().st_size < 150_000
    with Image.open(path) as page:
        assert page.mode == "1"
        assert page.size == (2550, 3300)
        assert page.info["dpi"] == pytest.approx((300, 300), abs=0.01)


def test_sample_text_has_paragraphs() -> None:
    """The ground truth holds several paragraphs separated by blank lines."""
    assert len(sample_text().strip().split("\n\n")) >= 3


def test_render_page_honours_size_and_resolution(tmp_path: Path) -> None:
    """A page is rendered at the asked size and resolution, black text on white."""
    path = render_page("Hello there.", tmp_path / "p.png", dpi=150, page_size_in=(4.0, 2.0))
    with Image.open(path) as page:
        assert page.size == (600, 300)
        assert page.getextrema() == (0, 255)


def test_render_page_refuses_text_that_does_not_fit(tmp_path: Path) -> None:
    """Text longer than the page is a ValueError, not a silently cut page."""
    with pytest.raises(ValueError, match="more than fit on the page"):
        render_page("word " * 500, tmp_path / "p.png", page_size_in=(3.0, 1.0))


def test_make_skewed_keeps_size_and_fills_white(tmp_path: Path) -> None:
    """A skewed copy keeps the canvas size and resolution, with white corners."""
    skewed = make_skewed(sample_page(), tmp_path / "skewed.png", 4.0)
    with Image.open(skewed) as page:
        assert page.size == (2550, 3300)
        assert page.getpixel((0, 0)) == 255
        assert page.info["dpi"] == pytest.approx((300, 300), abs=0.01)
