"""Fixtures for the image handlers: job contexts and pages rendered at test time from known text."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from PIL import Image
from rapidfuzz.distance import Levenshtein
from reactor_handlers.samples import render_page, sample_text

from reactor.handler import JobContext
from tests.handlers.page_helpers import (
    BAD_IMAGES,
    SECOND_TEXT,
    SHORT_TEXT,
    SMALL_PAGE_IN,
    make_ctx,
    normalise,
)


@pytest.fixture
def ctx(tmp_path: Path) -> JobContext:
    return make_ctx(tmp_path)


@pytest.fixture(scope="session")
def pages_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("pages")


@pytest.fixture(scope="session")
def page_text() -> str:
    return sample_text()


@pytest.fixture(scope="session")
def clean_page(pages_dir: Path, page_text: str) -> Path:
    """A US Letter page at 300 dpi rendered from ``page_text``."""
    return render_page(page_text, pages_dir / "clean.png")


@pytest.fixture(scope="session")
def short_page(pages_dir: Path) -> Path:
    """A small one-line page (fast to recognise) rendered from ``SHORT_TEXT``."""
    return render_page(SHORT_TEXT, pages_dir / "short.png", page_size_in=SMALL_PAGE_IN)


@pytest.fixture(scope="session")
def two_page_tiff(pages_dir: Path, short_page: Path) -> Path:
    """A two-page TIFF: ``SHORT_TEXT`` then ``SECOND_TEXT``."""
    second = render_page(SECOND_TEXT, pages_dir / "second.png", page_size_in=SMALL_PAGE_IN)
    path = pages_dir / "two.tif"
    with Image.open(short_page) as first, Image.open(second) as other:
        first.save(path, save_all=True, append_images=[other], dpi=(300, 300))
    return path


@pytest.fixture(scope="session")
def cer() -> Callable[[str, str], float]:
    """Character error rate: edit distance over the reference length, whitespace normalised."""

    def rate(reference: str, hypothesis: str) -> float:
        expected, got = normalise(reference), normalise(hypothesis)
        return Levenshtein.distance(expected, got) / max(1, len(expected))

    return rate


@pytest.fixture(params=sorted(BAD_IMAGES))
def bad_image(request: pytest.FixtureRequest, tmp_path: Path, short_page: Path) -> tuple[Path, str]:
    """A broken ``page.png`` in the job directory and the phrase its error message must contain."""
    make, phrase = BAD_IMAGES[request.param]
    path = tmp_path / "page.png"
    path.write_bytes(make(short_page.read_bytes()))
    return path, phrase
