"""The document handlers of ocr_document: split, batched prepare and OCR, join."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pypdfium2 as pdfium
import pytest
from PIL import Image
from pypdf import PdfReader
from reactor_handlers.pages import join_pages, ocr_pages, prepare_pages, split_pages
from reactor_handlers.samples import make_document

from reactor.errors import InputError
from reactor.handler import JobContext
from tests.handlers.page_helpers import SHORT_TEXT, SMALL_PAGE_IN

Cer = Callable[[str, str], float]
TEXTS = [SHORT_TEXT, "Every page gets its own number.", "The third page ends it."]


def step_ctx(root: Path, step: str, index: int | None = None) -> JobContext:
    """A step job's context: its directory inside the workflow's ``root``."""
    own = root / step if index is None else root / step / str(index)
    own.mkdir(parents=True, exist_ok=True)
    return JobContext("w." + step, step, 1, own, settings={"max_image_pixels": 10**8}, root=root)


@pytest.fixture
def tiff(tmp_path: Path) -> Path:
    return make_document(TEXTS, tmp_path / "doc.tif", page_size_in=SMALL_PAGE_IN)


def test_a_multi_page_tiff_splits_into_one_png_per_page_named_for_the_workflow(
    tmp_path: Path, tiff: Path
) -> None:
    """Three frames give page-0001..0003.png in the step's directory, returned relative to the
    workflow's directory, each keeping its resolution."""
    ctx = step_ctx(tmp_path, "split")
    found = split_pages(ctx, document=tiff)
    assert found["pages"] == ["split/page-0001.png", "split/page-0002.png", "split/page-0003.png"]
    assert (found["count"], found["format"]) == (3, "TIFF")
    with Image.open(tmp_path / found["pages"][2]) as page:
        assert round(page.info["dpi"][0]) == 300


def test_a_pdf_is_rendered_at_the_dpi_asked(tmp_path: Path) -> None:
    """A PDF's pages are rendered with pypdfium2 at ``dpi``: a 2 x 1 inch page at 150 dpi is
    300 x 150 pixels."""
    pdf = pdfium.PdfDocument.new()
    pdf.new_page(144, 72)
    pdf.new_page(144, 72)
    pdf.save(tmp_path / "doc.pdf")
    ctx = step_ctx(tmp_path, "split")
    found = split_pages(ctx, document=tmp_path / "doc.pdf", dpi=150)
    assert (found["count"], found["format"], found["dpi"]) == (2, "PDF", 150)
    with Image.open(tmp_path / found["pages"][0]) as page:
        assert page.size == (300, 150)


@pytest.mark.parametrize(
    ("data", "message"),
    [(b"%PDF-1.7 broken", "not a readable PDF"), (b"plain text", "is not an image")],
)
def test_a_broken_document_is_an_input_error(tmp_path: Path, data: bytes, message: str) -> None:
    """A truncated PDF and a file that is no image fail with InputError naming the problem."""
    with pytest.raises(InputError, match=message):
        split_pages(step_ctx(tmp_path, "split"), document_bytes=data)


def test_a_pdf_page_over_the_pixel_limit_is_refused_before_rendering(tmp_path: Path) -> None:
    """A page that would render to more pixels than allowed asks for a lower dpi."""
    pdf = pdfium.PdfDocument.new()
    pdf.new_page(612, 792)
    pdf.save(tmp_path / "doc.pdf")
    ctx = step_ctx(tmp_path, "split")
    limit = {"max_image_pixels": 10_000}
    small = JobContext(ctx.job_id, ctx.command, 1, ctx.workdir, settings=limit, root=tmp_path)
    with pytest.raises(InputError, match="use a lower dpi"):
        split_pages(small, document=tmp_path / "doc.pdf")


def test_batched_prepare_and_ocr_return_one_result_per_page_in_order(
    tmp_path: Path, tiff: Path, cer: Cer
) -> None:
    """prepare_pages and ocr_pages take lists; each returns one result per page, in order, with
    paths the next step can take; the text is each page's."""
    pages = split_pages(step_ctx(tmp_path, "split"), document=tiff)["pages"]
    images = [tmp_path / p for p in pages]
    prepared = prepare_pages(step_ctx(tmp_path, "prepare", 0), images, crop_border=False)
    assert [p["output"] for p in prepared] == [f"prepare/0/page-000{i}.png" for i in (1, 2, 3)]
    read = ocr_pages(step_ctx(tmp_path, "ocr", 0), [tmp_path / p["output"] for p in prepared])
    assert [r["page"] for r in read] == ["page-0001", "page-0002", "page-0003"]
    for expected, result in zip(TEXTS, read, strict=True):
        assert cer(expected, result["text"]) < 0.05
        assert b"ocr_page" in (tmp_path / result["layout"]).read_bytes()
        assert (tmp_path / result["pdf"]).read_bytes().startswith(b"%PDF")


def test_join_merges_the_pages_into_one_searchable_pdf_and_keeps_the_text_per_page(
    tmp_path: Path, tiff: Path
) -> None:
    """The join's PDF has every page, in order, with a text layer; the text stays a list."""
    pages = split_pages(step_ctx(tmp_path, "split"), document=tiff)["pages"]
    read = ocr_pages(step_ctx(tmp_path, "ocr", 0), [tmp_path / p for p in pages])
    joined = join_pages(step_ctx(tmp_path, "join"), [r["text"] for r in read],
                        pdfs=[tmp_path / r["pdf"] for r in read])  # fmt: skip
    assert joined["pages"] == 3
    assert joined["pdf"] == "join/document.pdf"
    reader = PdfReader(tmp_path / joined["pdf"])
    assert len(reader.pages) == 3
    assert "own number" in reader.pages[1].extract_text()
    assert (tmp_path / joined["text_file"]).read_text().count("\f") == 2
    with pytest.raises(InputError, match="2 PDFs for 3 pages"):
        join_pages(step_ctx(tmp_path, "join"), joined["text"], pdfs=[tmp_path / "x"] * 2)
