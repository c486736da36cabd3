"""The shipped ocr_document workflow on a generated 12-page TIFF (and a PDF): the pages' text in
order, an hOCR file per page, and one searchable PDF whose text layer a PDF library reads."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pypdfium2 as pdfium
from pymongo.asynchronous.database import AsyncDatabase
from pypdf import PdfReader
from rapidfuzz.distance import Levenshtein
from reactor_handlers.samples import document_texts, make_document

from reactor import workdir
from reactor.config import Settings
from reactor.workflows import client
from tests.integration.reactors import running

Db = AsyncDatabase[dict[str, Any]]
PAGES = 12
WAIT_S = 300.0


def cer(reference: str, hypothesis: str) -> float:
    """Character error rate, whitespace normalised."""
    expected, got = " ".join(reference.split()), " ".join(hypothesis.split())
    return Levenshtein.distance(expected, got) / max(1, len(expected))


async def run_document(settings: Settings, db: Db, workflow_id: str, document: str,
                       make: Any) -> dict[str, Any]:  # fmt: skip
    folder = workdir.workflow_dir(settings.jobs_root, workflow_id)
    folder.mkdir(parents=True)
    make(folder / document)
    async with running(settings, cpu_workers=2, max_jobs=8, job_timeout_s=300):
        await client.run_template(db, "ocr_document", {"document": document},
                                  workflow_id=workflow_id)  # fmt: skip
        return await client.wait(db, workflow_id, timeout_s=WAIT_S)


async def test_a_twelve_page_tiff_comes_back_as_text_hocr_and_one_searchable_pdf(
    settings: Settings, db: Db
) -> None:
    """Twelve pages: their text in order, each under 2 % character error rate; one hOCR file
    per page; a 12-page PDF whose text layer pypdf reads back page by page."""
    texts = document_texts(PAGES)
    done = await run_document(settings, db, "twelve", "scan.tif",
                              lambda path: make_document(texts, path))  # fmt: skip
    assert done["status"] == "succeeded", done.get("error")
    result = done["result"]
    assert result["pages"] == PAGES
    rates = [cer(expected, got) for expected, got in zip(texts, result["text"], strict=True)]
    assert max(rates) < 0.02, rates
    root = workdir.workflow_dir(settings.jobs_root, "twelve")
    assert len(result["layouts"]) == PAGES
    for path in result["layouts"]:
        assert b"ocr_page" in (root / path).read_bytes()
    reader = PdfReader(root / result["pdf"])
    assert len(reader.pages) == PAGES
    layer = [page.extract_text() for page in reader.pages]
    assert max(cer(expected, got) for expected, got in zip(texts, layer, strict=True)) < 0.02
    assert all(page.mediabox.width > 600 for page in reader.pages)  # whole pages, not crops
    assert done["step_states"]["ocr"]["elements"] == PAGES
    assert done["step_states"]["ocr"]["jobs"] == PAGES // 2  # batch 2


def _pdf_of(texts: list[str], path: Path) -> Path:
    """A PDF with one image page per text (rendered, then wrapped by PDFium)."""
    tiff = make_document(texts, path.with_suffix(".tif"))
    pdf = pdfium.PdfDocument.new()
    from PIL import Image, ImageSequence

    with Image.open(tiff) as image:
        for frame in ImageSequence.Iterator(image):
            bitmap = pdfium.PdfImage.new(pdf)
            bitmap.set_bitmap(pdfium.PdfBitmap.from_pil(frame.convert("L")))
            width, height = frame.size[0] * 72 / 300, frame.size[1] * 72 / 300
            bitmap.set_matrix(pdfium.PdfMatrix().scale(width, height))
            page = pdf.new_page(width, height)
            page.insert_obj(bitmap)
            page.gen_content()
    pdf.save(path)
    tiff.unlink()
    return path


async def test_a_pdf_is_split_at_the_dpi_asked_and_read(settings: Settings, db: Db) -> None:
    """A two-page PDF is rendered at 300 dpi by split_pages and read back page by page."""
    texts = document_texts(2)
    done = await run_document(settings, db, "pdf", "scan.pdf",
                              lambda path: _pdf_of(texts, path))  # fmt: skip
    assert done["status"] == "succeeded", done.get("error")
    assert [cer(e, g) < 0.02 for e, g in zip(texts, done["result"]["text"], strict=True)] == [
        True, True]  # fmt: skip
