"""The ``ocr`` handler: one ``tesseract`` run per job (command line and languages via pytesseract).

Tesseract reads the image file itself (no decoding to arrays in Python) and writes every output
in one run: a TSV, from which ``text``, ``words`` and ``mean_confidence`` are all derived, plus the
requested hOCR, ALTO and searchable PDF. A multi-page TIFF gives one combined file of each kind
(hOCR and ALTO hold one page element per page; the PDF has one page per image page).
"""

from __future__ import annotations

import functools
import os
import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from PIL import Image, ImageSequence

from reactor.errors import InputError, ToolMissing
from reactor.handler import JobContext, handler
from reactor_handlers._lazy import lazy_module
from reactor_handlers.images import (
    ImageInfo,
    ImageSource,
    inspect_image,
    max_pixels,
    source_from_args,
)
from reactor_handlers.tesseract import run_tesseract

if TYPE_CHECKING:
    import pytesseract
else:  # it imports NumPy (and pandas, when installed): only where OCR runs (``_lazy.py``)
    pytesseract = lazy_module("pytesseract")

OcrOutput = Literal["hocr", "alto", "pdf"]
Progress = Callable[[float, str], None]  # JobContext.progress: fraction, message

OCR_TIMEOUT_S = 300
FILE_NAMES: dict[str, str] = {"hocr": "ocr.hocr", "alto": "ocr.alto.xml", "pdf": "ocr.pdf"}
_TESSERACT_EXTENSIONS = {"hocr": "hocr", "alto": "xml", "pdf": "pdf"}
# Formats Leptonica reads itself; anything else is converted to TIFF for Tesseract first.
_LEPTONICA_FORMATS = frozenset({"PNG", "JPEG", "TIFF", "BMP", "GIF", "WEBP", "PPM", "JPEG2000"})
_MAX_DPI = 2400
_NO_TEXT_PSMS = {0: "only detects orientation and script", 2: "only analyses the layout"}


@dataclass(frozen=True)
class OcrOptions:
    """Tesseract options, checked by :meth:`checked` before any work is done."""

    lang: str = "eng"
    psm: int = 3
    oem: int = 3
    dpi: int | None = None
    outputs: tuple[OcrOutput, ...] = ()

    @classmethod
    def checked(
        cls,
        lang: str = "eng",
        psm: int = 3,
        oem: int = 3,
        dpi: int | None = None,
        outputs: Iterable[OcrOutput] = (),
    ) -> OcrOptions:
        """Validated options; ``InputError`` names the bad one."""
        _check_range("psm", psm, 0, 13)
        if psm in _NO_TEXT_PSMS:
            raise InputError(f"psm {psm} {_NO_TEXT_PSMS[psm]}; use 1 or 3 to 13")
        _check_range("oem", oem, 0, 3)
        if dpi is not None:
            _check_range("dpi", dpi, 1, _MAX_DPI)
        _check_lang(lang)
        return cls(lang, psm, oem, dpi, tuple(dict.fromkeys(outputs)))

    def config(self) -> str:
        """The command-line options and config files after ``-l lang``."""
        dpi = f" --dpi {self.dpi}" if self.dpi is not None else ""
        renderers = " ".join(self.outputs)
        return f"--psm {self.psm} --oem {self.oem}{dpi} tsv {renderers}".strip()


@handler(runs="process", timeout_s=OCR_TIMEOUT_S, version="1")
def ocr(
    ctx: JobContext,
    image: Path | None = None,
    image_bytes: bytes | None = None,
    image_base64: str | None = None,
    lang: str = "eng",
    psm: int = 3,
    oem: int = 3,
    dpi: int | None = None,
    outputs: list[OcrOutput] | None = None,
    inline_outputs: bool = False,
) -> dict[str, Any]:
    """Recognise the text of one image (every page of a multi-page TIFF).

    On a multi-page image, progress is reported page by page (``ctx.progress``).

    Returns ``text``, ``mean_confidence`` (mean word confidence, 0-100, ``None`` without words),
    ``words`` (``text``, ``conf``, ``left``, ``top``, ``width``, ``height``, 1-based ``page``),
    ``pages``, ``lang`` and ``files``: requested outputs as paths relative to the job directory
    (to the workflow's directory for a step of a workflow).
    With ``inline_outputs`` (for clients without the shared volume) ``contents`` also holds each
    output's bytes; the reactor moves a result over its inline limit to GridFS.
    """
    options = OcrOptions.checked(lang, psm, oem, dpi, outputs or ())
    source = source_from_args(image, image_bytes, image_base64)
    info = inspect_image(source, max_pixels(ctx))
    result = recognize(source, info, options, ctx.workdir, progress=ctx.progress)
    if inline_outputs:
        result["contents"] = {
            kind: (ctx.workdir / name).read_bytes() for kind, name in result["files"].items()
        }
    result["files"] = {kind: ctx.reference(name) for kind, name in result["files"].items()}
    return result


def recognize(
    source: ImageSource,
    info: ImageInfo,
    options: OcrOptions,
    workdir: Path,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Run Tesseract once on a checked image and build the result; outputs go to ``workdir``.

    With ``progress`` and more than one page, it is called as each page starts
    (``(N - 1) / pages``, ``"page N of M"``) and once all are read (``1.0``).
    """
    with tempfile.TemporaryDirectory(dir=workdir, prefix=".ocr-") as scratch:
        base = Path(scratch) / "out"
        run_tesseract(
            _tesseract_input(source, info, Path(scratch)),
            base,
            lang=options.lang,
            config=options.config(),
            name=info.name,
            timeout_s=OCR_TIMEOUT_S,
            on_page=_page_reporter(progress, info.frames),
        )
        pages, words, text = parse_tsv(_read_tsv(base, info.name))
        files = _keep_outputs(base, options.outputs, workdir)
    if progress is not None and info.frames > 1:
        progress(1.0, f"{pages} pages read")
    return {
        "text": text,
        "mean_confidence": _mean_confidence(words),
        "words": words,
        "pages": pages,
        "lang": options.lang,
        "files": files,
    }


def parse_tsv(tsv: str) -> tuple[int, list[dict[str, Any]], str]:
    """Page count, words and text from Tesseract's TSV output.

    In the text, words are joined by spaces, lines by ``\\n``, paragraphs by a blank line and
    pages by a form feed (``\\f``).
    """
    pages = 0
    words: list[dict[str, Any]] = []
    pieces: list[str] = []
    previous: tuple[int, ...] | None = None
    for row in tsv.split("\n")[1:]:
        cells = row.split("\t", 11)
        if len(cells) < 12:
            continue
        if cells[0] == "1":
            pages += 1
        if cells[0] != "5" or not cells[11].strip():
            continue
        key = tuple(int(cell) for cell in cells[1:5])
        pieces.append(_separator(previous, key) + cells[11].strip())
        previous = key
        words.append(_word(cells))
    return pages, words, "".join(pieces)


def _word(cells: Sequence[str]) -> dict[str, Any]:
    left, top, width, height = (int(cell) for cell in cells[6:10])
    return {
        "text": cells[11].strip(),
        "conf": round(float(cells[10]), 2),
        "left": left,
        "top": top,
        "width": width,
        "height": height,
        "page": int(cells[1]),
    }


def _separator(previous: tuple[int, ...] | None, key: tuple[int, ...]) -> str:
    # key is (page, block, paragraph, line)
    if previous is None:
        return ""
    if previous[0] != key[0]:
        return "\f"
    if previous[1:3] != key[1:3]:
        return "\n\n"
    return "\n" if previous[3] != key[3] else " "


def _mean_confidence(words: list[dict[str, Any]]) -> float | None:
    confidences = [word["conf"] for word in words if word["conf"] >= 0]
    return round(sum(confidences) / len(confidences), 2) if confidences else None


def _tesseract_input(source: ImageSource, info: ImageInfo, scratch: Path) -> Path:
    native = info.format in _LEPTONICA_FORMATS and (info.frames == 1 or info.format == "TIFF")
    if native and source.path is not None:
        return source.path
    target = scratch / f"input.{info.format.lower() if native else 'tiff'}"
    if native:
        target.write_bytes(source.data or b"")
        return target
    with source.open() as file, Image.open(file) as image:
        pages = [frame.copy() for frame in ImageSequence.Iterator(image)]
    pages[0].save(target, format="TIFF", save_all=True, append_images=pages[1:])
    return target


def _page_reporter(progress: Progress | None, pages: int) -> Callable[[int], None] | None:
    if progress is None or pages <= 1:
        return None

    def started(page: int) -> None:
        progress((page - 1) / pages, f"page {page} of {pages}")

    return started


def _read_tsv(base: Path, name: str) -> str:
    try:
        return Path(f"{base}.tsv").read_text(encoding="utf-8")
    except FileNotFoundError as error:
        raise InputError(f"tesseract wrote no result for {name}") from error


def _keep_outputs(base: Path, outputs: Sequence[OcrOutput], workdir: Path) -> dict[str, str]:
    files: dict[str, str] = {}
    for kind in outputs:
        target = workdir / FILE_NAMES[kind]
        os.replace(f"{base}.{_TESSERACT_EXTENSIONS[kind]}", target)
        files[kind] = FILE_NAMES[kind]
    return files


def _check_range(name: str, value: int, low: int, high: int) -> None:
    if not low <= value <= high:
        raise InputError(f"{name} must be between {low} and {high}, got {value}")


def _check_lang(lang: str) -> None:
    missing = _missing_languages(lang)
    if missing:
        installed_languages.cache_clear()  # installed since the list was read?
        missing = _missing_languages(lang)
    if missing:
        raise InputError(
            f"language {'+'.join(missing)!r} is not installed for tesseract "
            f"(installed: {', '.join(installed_languages())})"
        )


def _missing_languages(lang: str) -> list[str]:
    return [code for code in lang.split("+") if code not in installed_languages()]


@functools.cache
def installed_languages() -> tuple[str, ...]:
    """Tesseract's installed languages (cached; refreshed once when a language is missing)."""
    try:
        return tuple(pytesseract.get_languages(config=""))
    except pytesseract.TesseractNotFoundError:
        raise ToolMissing(
            "tesseract is not installed on this machine: install tesseract-ocr "
            "(scripts/system-deps.sh does), or run OCR jobs on a reactor that has it"
        ) from None
