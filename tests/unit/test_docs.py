"""The user-facing pages name the contract: settings, commands, fixtures, the migration steps."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()
POLLING = (ROOT / "docs" / "coming-from-a-polling-loop.md").read_text()


@pytest.mark.parametrize(
    "name",
    [
        "REACTOR_HANDLER_MODULES",
        "--handler-modules",
        "reactor cancel",
        "reactor retry",
        "reactor list",
        "reactor status",
        "--version",
        "running_reactor",
        "submit_and_wait",
        "reactor_harness",
        "REACTOR_LOG_LOCALS",
        "REACTOR_LOG_MAX_LINE_BYTES",
        "coming-from-a-polling-loop.md",
    ],
)
def test_the_readme_names_each_contract_item(name: str) -> None:
    """Every name users rely on from this work appears in the README."""
    assert name in README


@pytest.mark.parametrize(
    "phrase",
    [
        '{"job_id", "command", "args"}',
        "app.py",
        "/shared/jobs/<job_id>",
        "packages.txt",
        "requirements.txt",
        "REACTOR_HANDLER_MODULES",
        "job_adopted",
        "reactor migrate --check",
        "reactor migrate --apply",
        "`results`",
    ],
)
def test_the_polling_loop_page_walks_through_the_seed_format(phrase: str) -> None:
    """The migration page covers the seed documents, files, packages and the adoption steps."""
    assert phrase in POLLING


def test_every_exit_code_of_the_cli_is_in_the_readme() -> None:
    """The README's exit-code table lists exactly the codes the CLI defines."""
    from reactor.cli import support as cli_support

    codes = {
        v for k, v in vars(cli_support).items() if k.startswith("EXIT_") and isinstance(v, int)
    }
    rows = {
        int(line.split("|")[1])
        for line in README.splitlines()
        if line[:4] in {f"| {c} " for c in range(10)}
    }
    assert rows == codes


# ------------------------------------------------------------------ links between the pages

FENCE = re.compile(r"^(`{3,}|~{3,}).*?^\1[ \t]*$", re.MULTILINE | re.DOTALL)
CODE_SPAN = re.compile(r"(`+).+?\1", re.DOTALL)
LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
HEADING = re.compile(r"^#{1,6}[ \t]+(.+?)[ \t]*#*[ \t]*$", re.MULTILINE)
EXTERNAL = ("http://", "https://", "mailto:")


def markdown_pages() -> list[Path]:
    """The pages users read: the README, docs/, and the READMEs beside examples and deploy files."""
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    pages += sorted((ROOT / "examples").glob("**/README.md"))
    pages += sorted((ROOT / "deploy").glob("**/README.md"))
    return pages


def without_code(text: str) -> str:
    """Markdown with fenced blocks removed: a ``# comment`` in a shell block is not a heading."""
    return FENCE.sub("", text)


def slug(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading).strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    """Every heading anchor of a page, with GitHub's ``-1``, ``-2`` suffixes for repeats."""
    seen: dict[str, int] = {}
    found = set()
    for heading in HEADING.findall(without_code(page.read_text())):
        base = slug(heading)
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    return found


def relative_links(page: Path) -> list[str]:
    """The link targets of a page outside code, other than web addresses."""
    text = CODE_SPAN.sub("", without_code(page.read_text()))
    return [t for t in LINK.findall(text) if not t.startswith(EXTERNAL)]


def broken_link(page: Path, target: str) -> str | None:
    """Why ``target``, linked from ``page``, does not resolve; None when it does."""
    path_part, _, anchor = target.partition("#")
    dest = (page.parent / path_part).resolve() if path_part else page
    if not dest.exists():
        return f"{target}: no such file"
    if path_part and ROOT not in dest.parents:
        return f"{target}: outside the repository"
    if anchor and dest.suffix == ".md" and anchor not in anchors(dest):
        return f"{target}: no heading with anchor #{anchor} in {dest.name}"
    return None


def test_the_link_check_reports_a_missing_file_and_a_missing_anchor(tmp_path: Path) -> None:
    """A link to an absent file or to a heading a page lacks is reported; a good anchor is not."""
    page = tmp_path / "page.md"
    page.write_text("# The page\n\n[a](#the-page) [b](#elsewhere) [c](gone.md)\n")
    found = {t: broken_link(page, t) for t in relative_links(page)}
    assert found["#the-page"] is None
    assert "no heading with anchor #elsewhere" in str(found["#elsewhere"])
    assert "no such file" in str(found["gone.md"])


def test_the_link_check_sees_headings_and_skips_code() -> None:
    """The checker's anchors follow GitHub's rule and ignore lines inside fenced code."""
    assert slug("Handlers from a plain module (`REACTOR_HANDLER_MODULES`)") == (
        "handlers-from-a-plain-module-reactor_handler_modules"
    )
    assert slug("Claims and the `claim_order` index") == "claims-and-the-claim_order-index"
    text = "# Title\n\n```sh\n# not a heading\n[x](nowhere.md)\n```\n\n## Title\n"
    assert HEADING.findall(without_code(text)) == ["Title", "Title"]
    assert LINK.findall(CODE_SPAN.sub("", without_code(text))) == []


@pytest.mark.parametrize("page", markdown_pages(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves(page: Path) -> None:
    """Each link to a file or a heading anchor in the repository's pages points at something."""
    problems = [p for t in relative_links(page) if (p := broken_link(page, t)) is not None]
    assert problems == []
