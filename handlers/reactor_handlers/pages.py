"""Documents as pages, for workflows: ``split_pages``, ``prepare_pages``, ``ocr_pages``,
``join_pages`` (the steps of the shipped ``ocr_document`` template).

- ``split_pages`` turns a multi-page TIFF (each frame, with Pillow) or a PDF (each page rendered
  at ``dpi`` with pypdfium2, the PDFium engine under the BSD-3/Apache-2.0 licences; PyMuPDF is
  AGPL) into one PNG per page, ``page-0001.png`` on.
- ``prepare_pages`` and ``ocr_pages`` are *batched* handlers: ``images`` is the list of the
  pages their job was given (``batch: N`` in the workflow), and each returns one result per
  page, in the same order.
- ``join_pages`` puts the pages back together: the text page by page, the hOCR (or ALTO) file of
  each page, and one searchable PDF of every page (Tesseract's per-page PDFs merged with pypdf).

Paths in their results are relative to the workflow's directory (``ctx.reference``), so the
next step can take them as arguments.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from PIL import Image

from reactor.errors import InputError
from reactor.handler import JobContext, handler
from reactor_handlers.images import ImageSource, frames, inspect_image, max_pixels, open_image
from reactor_handlers.ocr import OCR_TIMEOUT_S, OcrOptions, recognize
from reactor_handlers.vision import Binarize, prepare

Layout = Literal["hocr", "alto"]

SPLIT_TIMEOUT_S = 600
MAX_PAGES = 5000
MAX_DPI = 1200
_PDF_MAGIC = b"%PDF-"


@handler(runs="process", timeout_s=SPLIT_TIMEOUT_S, version="1")
def split_pages(
    ctx: JobContext,
    document: Path | None = None,
    document_bytes: bytes | None = None,
    dpi: int = 300,
    max_pages: int = MAX_PAGES,
) -> dict[str, Any]:
    """One PNG per page of a multi-page TIFF (or any image Pillow reads) or a PDF.

    Returns ``pages`` (paths, in page order), ``count``, ``format`` (``TIFF``, ``PDF``, ...)
    and ``dpi`` (of the rendered PDF pages; a TIFF's pages keep their own resolution).
    """
    if not 1 <= dpi <= MAX_DPI:
        raise InputError(f"dpi must be between 1 and {MAX_DPI}, got {dpi}")
    source = _source(ctx, document, document_bytes)
    if source.head(len(_PDF_MAGIC)) == _PDF_MAGIC:
        written, kind = _split_pdf(ctx, source, dpi, max_pages), "PDF"
    else:
        written, kind = _split_image(ctx, source, max_pages)
    if not written:
        raise InputError(f"{source.name} has no pages")
    return {
        "pages": [ctx.reference(path) for path in written],
        "count": len(written),
        "format": kind,
        "dpi": dpi if kind == "PDF" else None,
    }


def _source(ctx: JobContext, document: Path | None, data: bytes | None) -> ImageSource:
    if (document is None) == (data is None):
        raise InputError("give exactly one of document, document_bytes")
    if document is not None:
        return ImageSource.from_path(document)
    target = ctx.path("document.bin")
    target.write_bytes(data or b"")
    return ImageSource(name="document_bytes", path=target)


def _page_path(ctx: JobContext, number: int) -> Path:
    return ctx.path(f"page-{number:04d}.png")


def _split_image(ctx: JobContext, source: ImageSource, max_pages: int) -> tuple[list[Path], str]:
    limit = max_pixels(ctx)
    written: list[Path] = []
    with open_image(source, limit) as image:
        kind = image.format or "image"
        count = getattr(image, "n_frames", 1)
        for number, frame in enumerate(frames(image, source.name, limit), start=1):
            _check_count(source.name, number, max_pages)
            ctx.progress((number - 1) / count, f"page {number} of {count}")
            target = _page_path(ctx, number)
            dpi = frame.info.get("dpi") or image.info.get("dpi")
            frame.copy().save(target, format="PNG", **({"dpi": dpi} if dpi else {}))
            written.append(target)
    return written, kind


def _split_pdf(ctx: JobContext, source: ImageSource, dpi: int, max_pages: int) -> list[Path]:
    import pypdfium2 as pdfium

    limit = max_pixels(ctx)
    try:
        pdf = pdfium.PdfDocument(str(source.path))
    except pdfium.PdfiumError as exc:
        raise InputError(f"{source.name} is not a readable PDF ({exc})") from None
    written: list[Path] = []
    try:
        count = len(pdf)
        _check_count(source.name, count, max_pages)
        for index in range(count):
            ctx.progress(index / count, f"page {index + 1} of {count}")
            written.append(_render(ctx, pdf[index], index + 1, dpi, limit, source.name))
    finally:
        pdf.close()
    return written


def _render(ctx: JobContext, page: Any, number: int, dpi: int, limit: int, name: str) -> Path:
    width_pt, height_pt = page.get_size()
    size = (round(width_pt * dpi / 72), round(height_pt * dpi / 72))
    if size[0] * size[1] > limit:
        raise InputError(
            f"{name} page {number} at {dpi} dpi has {size[0] * size[1]} pixels "
            f"({size[0]}x{size[1]}), over the limit of {limit}: use a lower dpi"
        )
    image: Image.Image = page.render(scale=dpi / 72, grayscale=True).to_pil()
    target = _page_path(ctx, number)
    image.save(target, format="PNG", dpi=(dpi, dpi))
    page.close()
    return target


def _check_count(name: str, count: int, max_pages: int) -> None:
    if count > max_pages:
        raise InputError(f"{name} has more than {max_pages} pages (max_pages)")


@handler(runs="process", timeout_s=OCR_TIMEOUT_S, version="1")
def prepare_pages(
    ctx: JobContext,
    images: list[Path],
    deskew: bool = True,
    denoise: bool = False,
    binarize: Binarize = "otsu",
    crop_border: bool = True,
) -> list[dict[str, Any]]:
    """``prepare`` each page of the batch; one result per page (``output`` is its path)."""
    results = []
    for number, image in enumerate(images):
        ctx.progress(number / len(images), f"page {number + 1} of {len(images)}")
        results.append(
            prepare(
                ctx,
                image,
                denoise=denoise,
                binarize=binarize,
                deskew=deskew,
                crop_border=crop_border,
                output=f"{image.stem}.png",
            )
        )
    return results


@handler(runs="process", timeout_s=OCR_TIMEOUT_S, version="1")
def ocr_pages(
    ctx: JobContext,
    images: list[Path],
    lang: str = "eng",
    psm: int = 3,
    oem: int = 3,
    layout: Layout = "hocr",
    pdf: bool = True,
) -> list[dict[str, Any]]:
    """OCR each page of the batch; one result per page, in order: ``page`` (the image's name),
    ``text``, ``mean_confidence``, ``layout`` (its hOCR or ALTO file) and ``pdf`` (a
    searchable one-page PDF, unless ``pdf`` is false)."""
    options = OcrOptions.checked(lang, psm, oem, None, [layout, "pdf"] if pdf else [layout])
    results = []
    for number, image in enumerate(images):
        ctx.progress(number / len(images), f"page {number + 1} of {len(images)}")
        source = ImageSource.from_path(image)
        info = inspect_image(source, max_pixels(ctx))
        folder = ctx.path(image.stem)
        folder.mkdir(exist_ok=True)
        found = recognize(source, info, options, folder)
        files = {kind: ctx.reference(folder / name) for kind, name in found["files"].items()}
        results.append(
            {
                "page": image.stem,
                "text": found["text"],
                "mean_confidence": found["mean_confidence"],
                "layout": files[layout],
                "pdf": files.get("pdf"),
            }
        )
    return results


@handler(runs="process", timeout_s=OCR_TIMEOUT_S, version="1")
def join_pages(
    ctx: JobContext,
    texts: list[str],
    pdfs: list[Path] | None = None,
    layouts: list[str] | None = None,
    confidences: list[float | None] | None = None,
    output: str = "document.pdf",
) -> dict[str, Any]:
    """The document again: ``text`` (a list, page by page, also written to ``document.txt``
    with a form feed between pages), ``layouts`` (each page's hOCR or ALTO file), ``pdf`` (the
    pages' PDFs merged into one searchable PDF) and ``pages``."""
    text_file = ctx.path("document.txt")
    text_file.write_text("\f".join(texts), encoding="utf-8")
    result: dict[str, Any] = {
        "pages": len(texts),
        "text": texts,
        "text_file": ctx.reference(text_file),
        "layouts": layouts or [],
        "mean_confidence": confidences or [],
        "pdf": None,
    }
    if pdfs:
        if len(pdfs) != len(texts):
            raise InputError(f"{len(pdfs)} PDFs for {len(texts)} pages")
        result["pdf"] = ctx.reference(_merge(pdfs, ctx.path(output)))
    return result


def _merge(pdfs: list[Path], target: Path) -> Path:
    from pypdf import PdfWriter

    writer = PdfWriter()
    for path in pdfs:
        writer.append(str(path))
    with target.open("wb") as out:
        writer.write(out)
    writer.close()
    return target
