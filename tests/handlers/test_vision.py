"""The OpenCV handlers: page preparation and deskew, resizing, thumbnails, prepare-then-OCR."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from reactor_handlers.ocr import ocr
from reactor_handlers.samples import make_skewed
from reactor_handlers.vision import (
    MIN_MARGIN_PX,
    crop_to_ink,
    estimate_skew,
    ocr_page,
    prepare,
    resize,
    thumbnail,
)

from reactor.errors import InputError, PathEscape
from reactor.handler import JobContext, Runs, options_of
from tests.handlers.page_helpers import LABEL_TEXT, make_ctx, render_label

Cer = Callable[[str, str], float]


def _pixels(path: Path) -> np.ndarray:
    with Image.open(path) as picture:
        return np.asarray(picture.convert("L"))


@pytest.fixture(scope="module")
def color_photo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 400x300 RGB image with a gradient, standing in for a photo."""
    path = tmp_path_factory.mktemp("photo") / "photo.png"
    ramp = np.linspace(0, 255, 400, dtype=np.uint8)
    pixels = np.stack([np.tile(ramp, (300, 1))] * 3, axis=-1)
    pixels[..., 2] = 40
    Image.fromarray(pixels).save(path, dpi=(100, 100))
    return path


@pytest.mark.parametrize("skew_deg", [3.0, -4.0, 1.7])
def test_deskew_recovers_the_rotation_within_half_a_degree(
    ctx: JobContext, clean_page: Path, skew_deg: float
) -> None:
    """A page turned by a few degrees is straightened by the opposite rotation, +-0.5 degree."""
    skewed = make_skewed(clean_page, ctx.workdir / "skewed.png", skew_deg)
    result = prepare(ctx, skewed)
    assert abs(result["angle_deg"] + skew_deg) < 0.5


def test_straight_page_is_not_rotated(clean_page: Path) -> None:
    """The skew of a level page is measured as zero."""
    assert abs(estimate_skew(_pixels(clean_page))) < 0.1


def test_blank_page_has_no_skew() -> None:
    """A page without ink has nothing to measure and reports zero."""
    assert estimate_skew(np.full((200, 300), 255, dtype=np.uint8)) == 0.0


def test_prepare_writes_a_cropped_black_and_white_image(ctx: JobContext, clean_page: Path) -> None:
    """The prepared image is written where asked, binarized, cropped, and its size reported."""
    result = prepare(ctx, clean_page, output="out/prepared.png")
    assert result["output"] == "out/prepared.png"
    with Image.open(ctx.workdir / "out" / "prepared.png") as written:
        assert written.size == (result["width"], result["height"])
        assert written.mode == "1"
        assert written.info["dpi"] == pytest.approx((300, 300), abs=0.01)
    assert result["width"] < 2550
    assert result["height"] < 3300
    assert result["angle_deg"] == 0.0


@pytest.mark.parametrize("binarize", ["adaptive", "none"])
def test_prepare_other_binarizations_keep_the_text(
    ctx: JobContext, clean_page: Path, binarize: str
) -> None:
    """Adaptive thresholding and no thresholding both leave dark text on a white page."""
    result = prepare(ctx, clean_page, binarize=binarize, deskew=False, crop_border=False)
    pixels = _pixels(ctx.workdir / result["output"])
    assert pixels.shape == (3300, 2550)
    assert 0.01 < float(np.mean(pixels < 128)) < 0.2


def test_prepare_can_keep_colour_and_denoise(ctx: JobContext, color_photo: Path) -> None:
    """Without grayscale or binarization the colours survive, denoised and uncropped."""
    result = prepare(
        ctx, color_photo, grayscale=False, binarize="none", denoise=True, crop_border=False
    )
    with Image.open(ctx.workdir / result["output"]) as written:
        assert written.mode == "RGB"
        assert written.size == (400, 300)


def test_resize_to_a_width_keeps_the_aspect_ratio(ctx: JobContext, color_photo: Path) -> None:
    """Giving only a width scales the height to match."""
    result = resize(ctx, color_photo, width=200)
    assert (result["width"], result["height"]) == (200, 150)
    with Image.open(ctx.workdir / "resized.png") as written:
        assert written.size == (200, 150)
        assert written.mode == "RGB"
        assert written.info["dpi"] == pytest.approx((50, 50), abs=1)


@pytest.mark.parametrize(
    ("arguments", "size"),
    [
        ({"height": 60}, (80, 60)),
        ({"width": 50, "height": 70}, (50, 70)),
        ({"scale": 1.5}, (600, 450)),
    ],
)
def test_resize_modes(
    ctx: JobContext, color_photo: Path, arguments: dict[str, float], size: tuple[int, int]
) -> None:
    """A height, both sides, or a scale factor give the expected size."""
    result = resize(ctx, color_photo, output="r.jpg", **arguments)
    with Image.open(ctx.workdir / "r.jpg") as written:
        assert written.size == size == (result["width"], result["height"])


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({}, "give width, height or scale"),
        ({"width": 10, "scale": 2.0}, "give either scale or width/height, not both"),
        ({"scale": 0.0}, "scale must be positive, got 0.0"),
        ({"width": 0}, "width must be at least 1, got 0"),
        ({"scale": 100.0}, "the output would have 1200000000 pixels"),
        ({"width": 10, "output": "out.txt"}, "output 'out.txt' must end in"),
    ],
)
def test_resize_refuses_bad_arguments(
    ctx: JobContext, color_photo: Path, arguments: dict[str, Any], message: str
) -> None:
    """Missing, conflicting or out-of-range sizes and unknown output types are InputErrors."""
    with pytest.raises(InputError, match=re.escape(message)):
        resize(ctx, color_photo, **arguments)


def test_output_may_not_leave_the_job_directory(ctx: JobContext, color_photo: Path) -> None:
    """An output path outside the job directory is refused."""
    with pytest.raises(PathEscape):
        thumbnail(ctx, color_photo, output="../escape.png")


def test_thumbnail_fits_the_longer_side(ctx: JobContext, clean_page: Path) -> None:
    """The longer side becomes ``max_size`` and the aspect ratio is kept."""
    result = thumbnail(ctx, clean_page, max_size=256)
    with Image.open(ctx.workdir / "thumbnail.png") as written:
        assert written.size == (198, 256) == (result["width"], result["height"])


def test_thumbnail_never_enlarges(ctx: JobContext, color_photo: Path) -> None:
    """An image already smaller than ``max_size`` keeps its size."""
    result = thumbnail(ctx, color_photo, max_size=1000)
    assert (result["width"], result["height"]) == (400, 300)


def test_thumbnail_refuses_a_zero_size(ctx: JobContext, color_photo: Path) -> None:
    """``max_size`` below 1 is an InputError."""
    with pytest.raises(InputError, match="max_size must be at least 1, got 0"):
        thumbnail(ctx, color_photo, max_size=0)


def test_ocr_page_reads_a_skewed_page(
    ctx: JobContext, clean_page: Path, page_text: str, cer: Cer
) -> None:
    """Prepare-then-OCR reads a page skewed by 3 degrees with a character error rate under 5%."""
    skewed = make_skewed(clean_page, ctx.workdir / "skewed.png", 3.0)
    result = ocr_page(ctx, skewed, outputs=["hocr"])
    assert cer(page_text, result["text"]) < 0.05
    assert abs(result["prepare"]["angle_deg"] + 3.0) < 0.5
    assert result["prepare"]["output"] == "prepared.png"
    assert result["pages"] == 1
    assert (ctx.workdir / result["files"]["hocr"]).is_file()


def test_ocr_page_checks_ocr_options_before_preparing(ctx: JobContext, clean_page: Path) -> None:
    """An unknown language fails the job before any preparation is written."""
    with pytest.raises(InputError, match="language 'xxx' is not installed"):
        ocr_page(ctx, clean_page, lang="xxx")
    assert not (ctx.workdir / "prepared.png").exists()


@pytest.mark.parametrize("command", [prepare, thumbnail])
def test_bad_image_is_refused(
    ctx: JobContext, bad_image: tuple[Path, str], command: Callable[..., object]
) -> None:
    """The vision handlers refuse broken images with the same clear InputErrors as ``ocr``."""
    path, phrase = bad_image
    with pytest.raises(InputError, match="^page\\.png " + re.escape(phrase)):
        command(ctx, path)


def test_pixel_limit_applies_to_vision(tmp_path: Path, clean_page: Path) -> None:
    """An image over ``max_image_pixels`` is refused by the vision handlers too."""
    with pytest.raises(InputError, match="over the limit of 1000"):
        prepare(make_ctx(tmp_path, max_image_pixels=1000), clean_page)


@pytest.mark.parametrize("command", [prepare, resize, thumbnail, ocr_page])
def test_vision_handlers_run_in_the_process_pool(command: Callable[..., object]) -> None:
    """Every vision handler is declared for the CPU pool with a timeout and a version."""
    options = options_of(command)
    assert options.runs is Runs.PROCESS
    assert options.timeout_s is not None
    assert options.version == "1"


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_ocr_page_reads_a_one_line_label_as_plain_ocr_does(ctx: JobContext, seed: int) -> None:
    """A label whose ink nearly touches its edges: prepare keeps a margin, so OCR still reads it.

    Cropped without a margin, this label read as empty text while plain ``ocr`` read it.
    """
    label = render_label(LABEL_TEXT, ctx.workdir / "label.png", seed=seed)
    plain = ocr(ctx, image=label)
    assert plain["text"] == LABEL_TEXT
    prepared = ocr_page(ctx, label)
    assert prepared["text"] == plain["text"]


def test_crop_keeps_a_white_margin_where_the_ink_touches_the_edge() -> None:
    """Ink at the image's edge gets a white margin added; elsewhere the margin is cut from it."""
    pixels = np.full((60, 200), 255, dtype=np.uint8)
    pixels[0:10, 50:150] = 0  # ink touching the top edge
    cropped = crop_to_ink(pixels)
    ink_rows = np.flatnonzero((cropped < 128).any(axis=1))
    ink_cols = np.flatnonzero((cropped < 128).any(axis=0))
    assert ink_rows[0] == MIN_MARGIN_PX  # white added above
    assert cropped.shape[0] - 1 - ink_rows[-1] == MIN_MARGIN_PX
    assert (ink_cols[0], cropped.shape[1] - 1 - ink_cols[-1]) == (MIN_MARGIN_PX, MIN_MARGIN_PX)
    assert (cropped[:MIN_MARGIN_PX] == 255).all()
    assert int((cropped < 128).sum()) == 10 * 100  # every ink pixel kept


def test_crop_keeps_colour_images_white_around_the_ink() -> None:
    """A colour image's added margin is white in every channel."""
    pixels = np.full((40, 40, 3), 255, dtype=np.uint8)
    pixels[:5, :5] = (10, 20, 30)
    cropped = crop_to_ink(pixels)
    assert cropped.shape == (5 + 2 * MIN_MARGIN_PX, 5 + 2 * MIN_MARGIN_PX, 3)
    assert (cropped[:MIN_MARGIN_PX] == 255).all()
