"""OpenCV handlers: ``prepare`` a scanned page for OCR, ``resize``, ``thumbnail``, ``ocr_page``.

Images are decoded once, with the guards of :mod:`reactor_handlers.images`, and only the first
frame of a multi-page file is used. Outputs are written inside the job directory with PIL, keeping
the resolution (dpi) so that Tesseract sees the true scale.

Angles follow OpenCV and PIL: positive is counter-clockwise as the image is displayed. ``prepare``
reports ``angle_deg``, the rotation it *applied*; a page scanned 3 degrees counter-clockwise
(``make_skewed(src, dst, 3)``) is straightened by a rotation of -3 degrees.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeAlias

from PIL import Image

from reactor.errors import InputError
from reactor.handler import JobContext, handler
from reactor_handlers._lazy import lazy_module
from reactor_handlers.images import (
    ImageInfo,
    ImageSource,
    load_first_frame,
    max_pixels,
    to_array,
)
from reactor_handlers.ocr import OCR_TIMEOUT_S, OcrOptions, OcrOutput, recognize

if TYPE_CHECKING:
    import cv2
    import numpy as np
    import numpy.typing as npt
else:  # imported by the pool worker that runs a handler of this module (``_lazy.py``)
    cv2, np = lazy_module("cv2"), lazy_module("numpy")

Array: TypeAlias = "npt.NDArray[np.uint8]"
Binarize = Literal["none", "otsu", "adaptive"]

VISION_TIMEOUT_S = 120
MAX_SKEW_DEG = 10.0
MIN_MARGIN_PX = 20  # white kept around the ink by crop_to_ink
MIN_ROTATION_DEG = 0.15  # smaller skews do not hurt OCR; rotating would only blur the page
_SKEW_SAMPLE_PX = 1200  # the skew search works on a copy at most this large
_SAVE_FORMATS = frozenset({"PNG", "TIFF", "JPEG", "WEBP", "BMP"})


@handler(runs="process", timeout_s=VISION_TIMEOUT_S, version="1")
def prepare(
    ctx: JobContext,
    image: Path,
    grayscale: bool = True,
    denoise: bool = False,
    binarize: Binarize = "otsu",
    deskew: bool = True,
    crop_border: bool = True,
    output: str = "prepared.png",
) -> dict[str, Any]:
    """Clean a page for OCR: grayscale, median denoise, deskew, binarize, crop to the ink.

    The crop keeps a white margin of at least ``MIN_MARGIN_PX`` around the ink (added where the
    image has less), because Tesseract misses text that touches the image's edge.

    Binarizing implies grayscale. Returns ``output`` (relative path), ``angle_deg`` (rotation
    applied, counter-clockwise positive), ``width`` and ``height`` of the written image. In a
    workflow, ``output`` is relative to the workflow's directory (``ctx.reference``).
    """
    target = _output_path(ctx, output)
    picture, info = _load(ctx, image)
    pixels = to_array(picture, grayscale=grayscale or binarize != "none")
    if denoise:
        pixels = np.asarray(cv2.medianBlur(pixels, 3), dtype=np.uint8)
    angle_deg = -estimate_skew(_gray(pixels)) if deskew else 0.0
    angle_deg = angle_deg if abs(angle_deg) >= MIN_ROTATION_DEG else 0.0
    pixels = rotate(pixels, angle_deg)
    pixels = binarized(pixels, binarize)
    if crop_border:
        pixels = crop_to_ink(pixels)
    _save(pixels, target, info.dpi, bilevel=binarize != "none")
    height, width = pixels.shape[:2]
    return {"output": ctx.reference(target), "angle_deg": angle_deg, "width": width,
            "height": height}  # fmt: skip


@handler(runs="process", timeout_s=VISION_TIMEOUT_S, version="1")
def resize(
    ctx: JobContext,
    image: Path,
    width: int | None = None,
    height: int | None = None,
    scale: float | None = None,
    output: str = "resized.png",
) -> dict[str, Any]:
    """Resize to ``width`` and/or ``height`` (one keeps the aspect ratio) or by ``scale``."""
    target = _output_path(ctx, output)
    picture, info = _load(ctx, image)
    size = _resized_size((info.width, info.height), width, height, scale)
    _check_output_pixels(size, max_pixels(ctx))
    return _write_resized(picture, size, target, output, info)


@handler(runs="process", timeout_s=VISION_TIMEOUT_S, version="1")
def thumbnail(
    ctx: JobContext, image: Path, max_size: int = 256, output: str = "thumbnail.png"
) -> dict[str, Any]:
    """Shrink so that the longer side is at most ``max_size`` (never enlarges)."""
    if max_size < 1:
        raise InputError(f"max_size must be at least 1, got {max_size}")
    target = _output_path(ctx, output)
    picture, info = _load(ctx, image)
    factor = min(1.0, max_size / max(info.width, info.height))
    size = (max(1, round(info.width * factor)), max(1, round(info.height * factor)))
    return _write_resized(picture, size, target, output, info)


@handler(runs="process", timeout_s=OCR_TIMEOUT_S, version="1")
def ocr_page(
    ctx: JobContext,
    image: Path,
    lang: str = "eng",
    psm: int = 3,
    oem: int = 3,
    dpi: int | None = None,
    outputs: list[OcrOutput] | None = None,
    deskew: bool = True,
    denoise: bool = False,
    binarize: Binarize = "otsu",
    crop_border: bool = True,
    prepared: str = "prepared.png",
) -> dict[str, Any]:
    """``prepare`` the page, then ``ocr`` the prepared image, in one job.

    Returns the ``ocr`` result (word boxes refer to the prepared image) plus ``prepare``: the
    ``prepare`` result.
    """
    options = OcrOptions.checked(lang, psm, oem, dpi, outputs or ())
    preparation = prepare(
        ctx,
        image,
        denoise=denoise,
        binarize=binarize,
        deskew=deskew,
        crop_border=crop_border,
        output=prepared,
    )
    path = ctx.path(prepared)
    kind = Image.registered_extensions()[path.suffix.lower()]
    # Our own output: already checked, one frame, in a format Tesseract reads directly.
    info = ImageInfo(path.name, kind, preparation["width"], preparation["height"], 1, None)
    result = recognize(ImageSource.from_path(path), info, options, ctx.workdir)
    return {**result, "prepare": preparation}


def estimate_skew(gray: Array) -> float:
    """The angle (degrees, counter-clockwise positive) by which the text lines of ``gray`` rise.

    A projection-profile search: the ink is projected onto the vertical axis at each candidate
    angle and the angle with the sharpest profile (largest sum of squared row counts) wins;
    a coarse pass over +-``MAX_SKEW_DEG`` in 0.5 degree steps, then 0.05 degree steps around it.
    """
    xs, ys = _ink_points(gray)
    if xs.size < 50:
        return 0.0
    coarse = _sharpest(xs, ys, np.arange(-MAX_SKEW_DEG, MAX_SKEW_DEG + 0.25, 0.5))
    fine = _sharpest(xs, ys, coarse + np.arange(-0.5, 0.525, 0.05))
    return round(fine, 2)


def rotate(pixels: Array, angle_deg: float) -> Array:
    """``pixels`` turned counter-clockwise by ``angle_deg`` on a canvas grown to fit, white fill."""
    if angle_deg == 0:
        return pixels
    height, width = pixels.shape[:2]
    matrix = cv2.getRotationMatrix2D((width / 2, height / 2), angle_deg, 1.0)
    cos, sin = abs(matrix[0, 0]), abs(matrix[0, 1])
    new_width = round(height * sin + width * cos)
    new_height = round(height * cos + width * sin)
    matrix[0, 2] += (new_width - width) / 2
    matrix[1, 2] += (new_height - height) / 2
    white = (255,) * (pixels.shape[2] if pixels.ndim == 3 else 1)
    rotated = cv2.warpAffine(
        pixels, matrix, (new_width, new_height), flags=cv2.INTER_CUBIC, borderValue=white
    )
    return np.asarray(rotated, dtype=np.uint8)


def binarized(pixels: Array, method: Binarize) -> Array:
    """Black ink on white (0 and 255) by Otsu's global threshold or a local Gaussian one."""
    if method == "otsu":
        _, result = cv2.threshold(pixels, 0, 255, cv2.THRESH_BINARY | cv2.THRESH_OTSU)
        return np.asarray(result, dtype=np.uint8)
    if method == "adaptive":
        result = cv2.adaptiveThreshold(
            pixels, 255, cv2.ADAPTIVE_THRESH_GAUSSIAN_C, cv2.THRESH_BINARY, 31, 15
        )
        return np.asarray(result, dtype=np.uint8)
    return pixels


def crop_to_ink(pixels: Array) -> Array:
    """``pixels`` cropped to the bounding box of the ink, with a white margin on every side.

    The margin is ``MIN_MARGIN_PX`` (or 2% of the short side, if larger), added as white where
    the image has less room around its ink: Tesseract misses text that touches the image's edge
    (a one-line label cropped without margin read as nothing at all).
    """
    ink = _ink_mask(_gray(pixels))
    rows, cols = np.flatnonzero(ink.any(axis=1)), np.flatnonzero(ink.any(axis=0))
    if rows.size == 0:
        return pixels
    height, width = ink.shape
    margin = max(MIN_MARGIN_PX, round(0.02 * min(height, width)))
    top, bottom = rows[0] - margin, rows[-1] + 1 + margin
    left, right = cols[0] - margin, cols[-1] + 1 + margin
    cropped = pixels[max(0, top) : min(height, bottom), max(0, left) : min(width, right)]
    border = (max(0, -top), max(0, bottom - height), max(0, -left), max(0, right - width))
    if not any(border):
        return cropped
    white = (255,) * (pixels.shape[2] if pixels.ndim == 3 else 1)
    padded = cv2.copyMakeBorder(cropped, *border, cv2.BORDER_CONSTANT, value=white)
    return np.asarray(padded, dtype=np.uint8)


def _sharpest(
    xs: npt.NDArray[np.float64], ys: npt.NDArray[np.float64], angles: npt.NDArray[np.float64]
) -> float:
    best_angle, best_score = 0.0, -1.0
    for angle in angles:
        theta = np.deg2rad(angle)
        # Row of each ink point once the image is turned by -angle (levelling a rise of angle).
        rows = ys * np.cos(theta) + xs * np.sin(theta)
        counts = np.bincount(np.round(rows - rows.min()).astype(np.intp)).astype(np.float64)
        score = float(np.dot(counts, counts))
        if score > best_score:
            best_angle, best_score = float(angle), score
    return best_angle


def _ink_points(gray: Array) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    factor = min(1.0, _SKEW_SAMPLE_PX / max(gray.shape))
    small = gray
    if factor < 1.0:
        resized = cv2.resize(gray, None, fx=factor, fy=factor, interpolation=cv2.INTER_AREA)
        small = np.asarray(resized, dtype=np.uint8)
    ys, xs = np.nonzero(_ink_mask(small))
    return xs.astype(np.float64), ys.astype(np.float64)


def _ink_mask(gray: Array) -> npt.NDArray[np.bool_]:
    if gray.min() == gray.max():
        return np.zeros(gray.shape, dtype=bool)
    threshold, _ = cv2.threshold(gray, 0, 255, cv2.THRESH_BINARY | cv2.THRESH_OTSU)
    return np.asarray(gray <= threshold)


def _gray(pixels: Array) -> Array:
    if pixels.ndim == 2:
        return pixels
    code = cv2.COLOR_RGBA2GRAY if pixels.shape[2] == 4 else cv2.COLOR_RGB2GRAY
    return np.asarray(cv2.cvtColor(pixels, code), dtype=np.uint8)


def _load(ctx: JobContext, image: Path) -> tuple[Image.Image, ImageInfo]:
    return load_first_frame(ImageSource.from_path(image), max_pixels(ctx))


def _resized_size(
    original: tuple[int, int], width: int | None, height: int | None, scale: float | None
) -> tuple[int, int]:
    if scale is not None and (width is not None or height is not None):
        raise InputError("give either scale or width/height, not both")
    if scale is not None:
        if scale <= 0:
            raise InputError(f"scale must be positive, got {scale}")
        return max(1, round(original[0] * scale)), max(1, round(original[1] * scale))
    for name, value in (("width", width), ("height", height)):
        if value is not None and value < 1:
            raise InputError(f"{name} must be at least 1, got {value}")
    if width is not None and height is not None:
        return width, height
    if width is not None:
        return width, max(1, round(original[1] * width / original[0]))
    if height is not None:
        return max(1, round(original[0] * height / original[1])), height
    raise InputError("give width, height or scale")


def _check_output_pixels(size: tuple[int, int], limit: int) -> None:
    if size[0] * size[1] > limit:
        raise InputError(
            f"the output would have {size[0] * size[1]} pixels ({size[0]}x{size[1]}), "
            f"over the limit of {limit}"
        )


def _write_resized(
    picture: Image.Image, size: tuple[int, int], target: Path, output: str, info: ImageInfo
) -> dict[str, Any]:
    pixels = to_array(picture, grayscale=False)
    shrinking = size[0] * size[1] < info.width * info.height
    interpolation = cv2.INTER_AREA if shrinking else cv2.INTER_CUBIC
    resized = np.asarray(cv2.resize(pixels, size, interpolation=interpolation), dtype=np.uint8)
    factor = size[0] / info.width
    dpi = (info.dpi[0] * factor, info.dpi[1] * factor) if info.dpi else None
    _save(resized, target, dpi, bilevel=False)
    return {"output": output, "width": size[0], "height": size[1]}


def _output_path(ctx: JobContext, output: str) -> Path:
    target = ctx.path(output)
    extension = target.suffix.lower()
    if Image.registered_extensions().get(extension) not in _SAVE_FORMATS:
        raise InputError(f"output {output!r} must end in .png, .tif, .jpg, .webp or .bmp")
    target.parent.mkdir(parents=True, exist_ok=True)
    return target


def _save(pixels: Array, target: Path, dpi: tuple[float, float] | None, *, bilevel: bool) -> None:
    picture = Image.fromarray(pixels)
    if bilevel:
        picture = picture.convert("1", dither=Image.Dither.NONE)
    elif picture.mode == "RGBA" and target.suffix.lower() in {".jpg", ".jpeg"}:
        picture = picture.convert("RGB")
    params: dict[str, Any] = {"dpi": (round(dpi[0]), round(dpi[1]))} if dpi else {}
    picture.save(target, **params)
