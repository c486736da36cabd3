"""A sample page that ships with the package, and the helpers that render and skew pages.

``page.png`` was rendered once from ``page.txt`` with :func:`render_page` (US Letter, 300 dpi,
DejaVu Sans 11 pt, 1-bit). Tests and benchmarks render their own pages from known text at run time
with the same function, so their ground truth never drifts from the image.
"""

from __future__ import annotations

import warnings
from importlib import resources
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

DEJAVU_SANS = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")
LETTER_IN = (8.5, 11.0)
_MARGIN_IN = 1.0
_LINE_SPACING = 1.35


def sample_page() -> Path:
    """The path of the shipped sample page image (``page.png``)."""
    return _resource("page.png")


def sample_text() -> str:
    """The ground truth of the sample page: paragraphs separated by blank lines."""
    return _resource("page.txt").read_text(encoding="utf-8")


def _resource(name: str) -> Path:
    found = resources.files(__name__).joinpath(name)
    if not isinstance(found, Path):
        raise FileNotFoundError(f"{name} is not a file on disk (package installed as a zip?)")
    return found


_SUBJECTS = (
    "invoices", "letters", "forms", "receipts", "contracts", "reports", "minutes", "notices",
    "statements", "orders", "tickets", "labels",
)  # fmt: skip


def document_texts(pages: int) -> list[str]:
    """Known text for each page of a sample document: every page different, page number in it."""
    texts = []
    for number in range(1, pages + 1):
        subject = _SUBJECTS[(number - 1) % len(_SUBJECTS)]
        texts.append(
            f"Page {number} of {pages}. This page holds {subject} for the archive.\n\n"
            f"The reactor reads page {number} in its own job, beside the other pages, and "
            f"joins the text of all {pages} pages in order when every page is done."
        )
    return texts


def make_document(texts: list[str], path: Path, *, dpi: int = 300,
                  page_size_in: tuple[float, float] = LETTER_IN) -> Path:  # fmt: skip
    """A multi-page TIFF (Group 4 compressed) with one page per text, rendered by
    :func:`render_page`."""
    pages = []
    folder = path.parent
    for number, text in enumerate(texts, start=1):
        single = render_page(text, folder / f".page-{number}.png", dpi=dpi,
                             page_size_in=page_size_in)  # fmt: skip
        with Image.open(single) as image:
            pages.append(image.convert("1"))
        single.unlink()
    pages[0].save(path, format="TIFF", save_all=True, append_images=pages[1:],
                  compression="group4", dpi=(dpi, dpi))  # fmt: skip
    return path


def make_skewed(src: Path, dst: Path, angle_deg: float) -> Path:
    """Write ``src`` turned counter-clockwise by ``angle_deg`` (white fill) to ``dst``."""
    with Image.open(src) as page:
        dpi = page.info.get("dpi")
        gray = page.convert("L")
    rotated = gray.rotate(angle_deg, resample=Image.Resampling.BICUBIC, fillcolor=255)
    rotated.save(dst, **({"dpi": dpi} if dpi else {}))
    return dst


def render_page(
    text: str,
    path: Path,
    *,
    dpi: int = 300,
    font_size: float = 11.0,
    page_size_in: tuple[float, float] = LETTER_IN,
) -> Path:
    """Render ``text`` (paragraphs split on blank lines) as black-on-white 1-bit ``path``.

    ``font_size`` is in points; lines wrap at word boundaries inside one-inch margins (or a tenth
    of the page for small pages). Raises ``ValueError`` if the text does not fit on the page.
    """
    size_px = (round(page_size_in[0] * dpi), round(page_size_in[1] * dpi))
    margin_px = round(min(_MARGIN_IN, min(page_size_in) / 10) * dpi)
    font = _font(font_size * dpi / 72)
    lines = _wrap(text, font, size_px[0] - 2 * margin_px)
    pitch_px = round(font.size * _LINE_SPACING)
    if margin_px + len(lines) * pitch_px > size_px[1] - margin_px:
        raise ValueError(f"text needs {len(lines)} lines, more than fit on the page")
    page = Image.new("L", size_px, 255)
    draw = ImageDraw.Draw(page)
    for number, line in enumerate(lines):
        draw.text((margin_px, margin_px + number * pitch_px), line, fill=0, font=font)
    bilevel = page.point(lambda value: 255 if value > 127 else 0).convert("1")
    bilevel.save(path, dpi=(dpi, dpi))
    return path


def _font(size_px: float) -> ImageFont.FreeTypeFont:
    if DEJAVU_SANS.is_file():
        return ImageFont.truetype(str(DEJAVU_SANS), round(size_px))
    warnings.warn(
        f"{DEJAVU_SANS} is missing (apt-get install fonts-dejavu-core); "
        "rendering with PIL's default font instead",
        RuntimeWarning,
        stacklevel=3,
    )
    fallback = ImageFont.load_default(size_px)
    if not isinstance(fallback, ImageFont.FreeTypeFont):
        raise RuntimeError(f"{DEJAVU_SANS} is missing and PIL has no scalable default font")
    return fallback


def _wrap(text: str, font: ImageFont.FreeTypeFont, width_px: int) -> list[str]:
    lines: list[str] = []
    for paragraph in text.strip().split("\n\n"):
        if lines:
            lines.append("")
        line = ""
        for word in paragraph.split():
            candidate = f"{line} {word}" if line else word
            if line and font.getlength(candidate) > width_px:
                lines.append(line)
                candidate = word
            line = candidate
        lines.append(line)
    return lines
