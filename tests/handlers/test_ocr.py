"""The ``ocr`` handler against pages rendered from known text, and its refusals of bad input."""

from __future__ import annotations

import base64
import re
import threading
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image, ImageSequence
from reactor_handlers.ocr import FILE_NAMES, OcrOptions, ocr, parse_tsv
from reactor_handlers.tesseract import run_tesseract

from reactor import progress
from reactor.errors import InputError, JobTimeout, ToolMissing
from reactor.handler import JobContext, Runs, options_of
from tests.handlers.page_helpers import SECOND_TEXT, SHORT_TEXT, make_ctx, normalise

Cer = Callable[[str, str], float]


@pytest.fixture(scope="module")
def clean_workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("ocr-job")


@pytest.fixture(scope="module")
def clean_result(clean_workdir: Path, clean_page: Path) -> dict[str, Any]:
    """One OCR run of the clean page with every output, shared by the tests that inspect it."""
    return ocr(make_ctx(clean_workdir), image=clean_page, outputs=["hocr", "alto", "pdf"])


def test_clean_page_character_error_rate_is_under_two_percent(
    clean_result: dict[str, Any], page_text: str, cer: Cer
) -> None:
    """A clean 300 dpi page is read with a character error rate under 2%."""
    assert cer(page_text, clean_result["text"]) < 0.02


def test_words_have_boxes_confidences_and_pages(clean_result: dict[str, Any]) -> None:
    """Every word carries its text, a confidence in 0..100, a non-empty box and page 1."""
    words = clean_result["words"]
    assert len(words) > 100
    for word in words:
        assert word["text"].strip()
        assert 0 <= word["conf"] <= 100
        assert min(word["width"], word["height"]) > 0
        assert min(word["left"], word["top"]) >= 0
        assert word["page"] == 1


def test_text_is_derived_from_the_words(clean_result: dict[str, Any]) -> None:
    """The text holds exactly the recognised words, in order."""
    assert clean_result["text"].split() == [word["text"] for word in clean_result["words"]]


def test_mean_confidence_is_the_mean_of_word_confidences(clean_result: dict[str, Any]) -> None:
    """``mean_confidence`` averages the word confidences (and is high for a clean page)."""
    confidences = [word["conf"] for word in clean_result["words"]]
    assert clean_result["mean_confidence"] == pytest.approx(
        sum(confidences) / len(confidences), abs=0.01
    )
    assert clean_result["mean_confidence"] > 85


def test_result_reports_pages_and_language(clean_result: dict[str, Any]) -> None:
    """The result names the page count and the language used."""
    assert clean_result["pages"] == 1
    assert clean_result["lang"] == "eng"


def test_requested_files_are_written_in_the_job_directory(
    clean_result: dict[str, Any], clean_workdir: Path
) -> None:
    """hOCR, ALTO and PDF outputs are written and listed relative to the job directory."""
    assert clean_result["files"] == FILE_NAMES
    hocr = (clean_workdir / clean_result["files"]["hocr"]).read_text(encoding="utf-8")
    assert "ocrx_word" in hocr
    alto = (clean_workdir / clean_result["files"]["alto"]).read_text(encoding="utf-8")
    assert "<alto" in alto
    assert ET.fromstring(alto.encode()).tag.endswith("alto")
    assert (clean_workdir / clean_result["files"]["pdf"]).read_bytes().startswith(b"%PDF")


def test_no_scratch_files_are_left_behind(
    clean_result: dict[str, Any], clean_workdir: Path
) -> None:
    """Only the requested outputs remain in the job directory after a run."""
    assert sorted(path.name for path in clean_workdir.iterdir()) == sorted(FILE_NAMES.values())


def test_image_bytes_input_is_recognised(ctx: JobContext, short_page: Path, cer: Cer) -> None:
    """Encoded image bytes (BSON binary) are read like a file, and no files are requested."""
    result = ocr(ctx, image_bytes=short_page.read_bytes())
    assert cer(SHORT_TEXT, result["text"]) < 0.05
    assert result["files"] == {}


def test_image_base64_input_is_recognised(ctx: JobContext, short_page: Path, cer: Cer) -> None:
    """Base64 text (JSON clients) is decoded and read like a file."""
    encoded = base64.b64encode(short_page.read_bytes()).decode()
    assert cer(SHORT_TEXT, ocr(ctx, image_base64=encoded)["text"]) < 0.05


def test_multi_page_tiff_gives_two_pages(ctx: JobContext, two_page_tiff: Path, cer: Cer) -> None:
    """Both pages of a TIFF are read; words carry their page and pages split the text."""
    result = ocr(ctx, image=two_page_tiff, outputs=["hocr", "alto", "pdf"])
    assert result["pages"] == 2
    assert {word["page"] for word in result["words"]} == {1, 2}
    first, second = result["text"].split("\f")
    assert cer(SHORT_TEXT, first) < 0.05
    assert cer(SECOND_TEXT, second) < 0.05
    hocr = (ctx.workdir / result["files"]["hocr"]).read_text(encoding="utf-8")
    assert hocr.count("class='ocr_page'") == 2


@pytest.fixture
def reports() -> Iterator[list[tuple[str, float, str | None]]]:
    """Progress reports of this test, through a sink installed the way the reactor installs one."""
    seen: list[tuple[str, float, str | None]] = []
    previous = progress.set_sink(
        lambda job_id, fraction, message: seen.append((job_id, fraction, message))
    )
    yield seen
    progress.set_sink(previous)


def test_a_multi_page_tiff_reports_progress_page_by_page(
    ctx: JobContext, short_page: Path, two_page_tiff: Path, tmp_path: Path, reports: list[Any]
) -> None:
    """Three pages: a report as each page starts, then 1.0 once all are read."""
    three = tmp_path / "three.tif"
    with Image.open(two_page_tiff) as first_two, Image.open(short_page) as third:
        pages = [frame.copy() for frame in ImageSequence.Iterator(first_two)]
        pages[0].save(three, save_all=True, append_images=[*pages[1:], third], dpi=(300, 300))
    result = ocr(ctx, image=three)
    assert result["pages"] == 3
    assert reports == [
        ("test-job", 0.0, "page 1 of 3"),
        ("test-job", pytest.approx(1 / 3), "page 2 of 3"),
        ("test-job", pytest.approx(2 / 3), "page 3 of 3"),
        ("test-job", 1.0, "3 pages read"),
    ]


def test_a_single_page_reports_no_progress(
    ctx: JobContext, short_page: Path, reports: list[Any]
) -> None:
    """One page is one step: no progress writes for it."""
    ocr(ctx, image=short_page)
    assert reports == []


def test_format_tesseract_cannot_read_is_converted(
    ctx: JobContext, short_page: Path, cer: Cer
) -> None:
    """An image in a format Leptonica does not read (TGA) is converted before recognition."""
    from PIL import Image

    target = ctx.workdir / "page.tga"
    with Image.open(short_page) as page:
        page.convert("L").save(target)
    assert cer(SHORT_TEXT, ocr(ctx, image=target)["text"]) < 0.05


def test_languages_joined_with_plus_are_accepted(ctx: JobContext, short_page: Path) -> None:
    """``eng+osd`` names two installed languages and is accepted."""
    assert ocr(ctx, image=short_page, lang="eng+osd")["lang"] == "eng+osd"


def test_ocr_runs_in_the_process_pool() -> None:
    """The handler is declared for the CPU pool with a timeout and a version."""
    options = options_of(ocr)
    assert options.runs is Runs.PROCESS
    assert options.timeout_s == 300
    assert options.version == "1"


def test_bad_image_is_refused_with_a_clear_message(
    ctx: JobContext, bad_image: tuple[Path, str]
) -> None:
    """A non-image, truncated, 0-byte or 0-pixel file is an InputError naming file and problem."""
    path, phrase = bad_image
    with pytest.raises(InputError, match="^page\\.png " + re.escape(phrase)) as caught:
        ocr(ctx, image=path)
    assert caught.value.retryable is False


def test_empty_bytes_are_refused(ctx: JobContext) -> None:
    """Empty ``image_bytes`` are an InputError, not a crash."""
    with pytest.raises(InputError, match=r"^image_bytes is empty \(0 bytes\)"):
        ocr(ctx, image_bytes=b"")


def test_missing_file_is_refused(ctx: JobContext) -> None:
    """A path to no file is an InputError naming it."""
    with pytest.raises(InputError, match=r"^nothing\.png does not exist"):
        ocr(ctx, image=ctx.workdir / "nothing.png")


def test_image_over_the_pixel_limit_is_refused(tmp_path: Path, short_page: Path) -> None:
    """An image with more pixels than ``max_image_pixels`` is refused before decoding."""
    with pytest.raises(InputError, match=r"has 450000 pixels \(1500x300\), over the limit of 1000"):
        ocr(make_ctx(tmp_path, max_image_pixels=1000), image=short_page)


def test_unknown_language_lists_the_installed_ones(ctx: JobContext, short_page: Path) -> None:
    """An unknown language is an InputError that lists the installed languages."""
    with pytest.raises(InputError, match=r"language 'xxx' is not installed .*installed: .*eng"):
        ocr(ctx, image=short_page, lang="xxx")


def test_unknown_part_of_a_plus_language_is_named(ctx: JobContext, short_page: Path) -> None:
    """In ``eng+xxx`` the missing part, ``xxx``, is the one named."""
    with pytest.raises(InputError, match="language 'xxx' is not installed"):
        ocr(ctx, image=short_page, lang="eng+xxx")


@pytest.mark.parametrize(
    "sources",
    [{}, {"image_bytes": b"x", "image_base64": "eA=="}],
    ids=["none", "two"],
)
def test_exactly_one_image_source_is_required(ctx: JobContext, sources: dict[str, Any]) -> None:
    """Zero or several of image, image_bytes and image_base64 are an InputError."""
    with pytest.raises(InputError, match="give exactly one of image, image_bytes, image_base64"):
        ocr(ctx, **sources)


def test_all_three_image_sources_are_refused(ctx: JobContext, short_page: Path) -> None:
    """Giving a path, bytes and base64 together names all three."""
    with pytest.raises(InputError, match=r"\(got image, image_bytes, image_base64\)"):
        ocr(ctx, image=short_page, image_bytes=b"x", image_base64="eA==")


def test_invalid_base64_is_refused(ctx: JobContext) -> None:
    """Text that is not base64 is an InputError."""
    with pytest.raises(InputError, match="image_base64 is not valid base64"):
        ocr(ctx, image_base64="not base64!")


@pytest.mark.parametrize(
    ("option", "message"),
    [
        ({"psm": 14}, "psm must be between 0 and 13, got 14"),
        ({"psm": -1}, "psm must be between 0 and 13, got -1"),
        ({"psm": 0}, "psm 0 only detects orientation and script"),
        ({"oem": 4}, "oem must be between 0 and 3, got 4"),
        ({"dpi": 0}, "dpi must be between 1 and 2400, got 0"),
    ],
)
def test_out_of_range_options_are_refused(option: dict[str, Any], message: str) -> None:
    """psm, oem and dpi outside what Tesseract accepts are InputErrors."""
    with pytest.raises(InputError, match=message):
        OcrOptions.checked(**option)


def test_engine_failure_is_an_input_error(ctx: JobContext, short_page: Path) -> None:
    """An option the installed data cannot serve (legacy engine, oem 0) is an InputError."""
    with pytest.raises(InputError, match=r"^tesseract failed on short\.png: "):
        ocr(ctx, image=short_page, oem=0)


def test_a_missing_tesseract_is_an_environment_error(
    ctx: JobContext, short_page: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No tesseract binary on the machine is ToolMissing (retryable), not the input's fault."""
    import pytesseract
    from reactor_handlers.ocr import installed_languages

    monkeypatch.setattr(pytesseract.pytesseract, "tesseract_cmd", "/nonexistent/tesseract")
    installed_languages.cache_clear()
    try:
        with pytest.raises(ToolMissing, match="tesseract is not installed") as caught:
            ocr(ctx, image=short_page)
        assert caught.value.retryable
        with pytest.raises(ToolMissing, match="tesseract is not installed"):
            run_tesseract(short_page, ctx.workdir / "out", lang="eng", config="", name="short.png",
                          timeout_s=5)  # fmt: skip
    finally:
        monkeypatch.undo()
        installed_languages.cache_clear()


def test_tesseract_config_carries_options_and_renderers() -> None:
    """The options become Tesseract arguments, with each renderer named once."""
    options = OcrOptions.checked(psm=6, oem=1, dpi=300, outputs=["pdf", "hocr", "pdf"])
    assert options.config() == "--psm 6 --oem 1 --dpi 300 tsv pdf hocr"


def test_tsv_parsing_separates_lines_paragraphs_and_pages() -> None:
    """Words on one line join with spaces, lines with newlines, paragraphs with a blank line,
    pages with a form feed."""
    header = "level\tpage_num\tblock_num\tpar_num\tline_num\tword_num\tl\tt\tw\th\tconf\ttext"
    rows = [
        "1\t1\t0\t0\t0\t0\t0\t0\t100\t100\t-1\t",
        "5\t1\t1\t1\t1\t1\t1\t2\t3\t4\t90.5\tone",
        "5\t1\t1\t1\t1\t2\t1\t2\t3\t4\t80\ttwo",
        "5\t1\t1\t1\t2\t1\t1\t2\t3\t4\t70\tthree",
        "5\t1\t1\t2\t1\t1\t1\t2\t3\t4\t60\tfour",
        "5\t1\t1\t2\t1\t2\t1\t2\t3\t4\t-1\t ",
        "1\t2\t0\t0\t0\t0\t0\t0\t100\t100\t-1\t",
        "5\t2\t1\t1\t1\t1\t5\t6\t7\t8\t50\tfive",
    ]
    pages, words, text = parse_tsv("\n".join([header, *rows]) + "\n")
    assert pages == 2
    assert text == "one two\nthree\n\nfour\ffive"
    assert words[-1] == {
        "text": "five",
        "conf": 50.0,
        "left": 5,
        "top": 6,
        "width": 7,
        "height": 8,
        "page": 2,
    }
    assert normalise(text) == "one two three four five"


def test_tesseract_past_its_timeout_is_killed(clean_page: Path, tmp_path: Path) -> None:
    """A Tesseract run longer than its bound is killed and reported as a JobTimeout."""
    with pytest.raises(JobTimeout):
        run_tesseract(
            clean_page, tmp_path / "out", lang="eng", config="tsv", name="x", timeout_s=0.01
        )


def test_a_failing_progress_report_stops_tesseract(two_page_tiff: Path, tmp_path: Path) -> None:
    """An exception from the page callback propagates, and Tesseract is not left running."""

    def refuse(page: int) -> None:
        raise RuntimeError(f"no report for page {page}")

    with pytest.raises(RuntimeError, match="no report for page 1"):
        run_tesseract(
            two_page_tiff,
            tmp_path / "out",
            lang="eng",
            config="tsv",
            name="x",
            timeout_s=60,
            on_page=refuse,
        )
    children = Path(f"/proc/self/task/{threading.get_native_id()}/children")
    assert not children.exists() or children.read_text().split() == []
