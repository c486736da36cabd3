"""The user-facing pages name the contract: settings, commands, fixtures, the migration steps."""

from __future__ import annotations

import argparse
import ast
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

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


def readme_section(heading: str) -> str:
    """The README's text under ``heading``, up to the next heading of any level."""
    start = README.index(f"{heading}\n")
    end = README.find("\n#", start + len(heading))
    return README[start : end if end != -1 else None]


def test_every_exit_code_is_in_the_readme() -> None:
    """The README's exit-code table lists exactly the CLI's codes and the service's crash code."""
    from reactor import liveness
    from reactor.cli import support as cli_support
    from reactor.cli.main import EXIT_CRASHED

    codes = {
        v for k, v in vars(cli_support).items() if k.startswith("EXIT_") and isinstance(v, int)
    }
    codes |= {EXIT_CRASHED, liveness.WEDGED_EXIT_CODE}
    rows = re.findall(r"^\| (\d+) \|", readme_section("### Exit codes"), re.MULTILINE)
    assert sorted(int(code) for code in rows) == sorted(codes)


def cli_names() -> list[tuple[str, str]]:
    """Each subcommand of ``reactor`` and each of its own flags (not the settings' flags)."""
    from reactor.cli.main import build_parser
    from reactor.config import Settings

    setting_flags = {"--" + name.replace("_", "-") for name in Settings.model_fields}
    commands = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    found = []
    for command, parser in commands.choices.items():
        found.append((command, f"reactor {command}"))
        options = [o for a in parser._actions for o in a.option_strings if o.startswith("--")]
        found += [(command, o) for o in options if o not in setting_flags | {"--help"}]
    return found


@pytest.mark.parametrize(("command", "name"), cli_names())
def test_the_readme_and_the_cli_page_name_every_subcommand_and_flag(
    command: str, name: str
) -> None:
    """Every subcommand and its own flags appear in the README's CLI section and in docs/cli.md."""
    assert name in readme_section("## CLI"), command
    assert name in (ROOT / "docs" / "cli.md").read_text(), command


def job_fields() -> list[str]:
    """Every job and result field name ``reactor.model`` defines (``_id`` is MongoDB's own)."""
    from reactor import model

    names = [
        value
        for key, value in vars(model).items()
        if key.isupper() and isinstance(value, str) and re.fullmatch(r"[a-z][a-z_]*", value)
    ]
    return sorted(set(names))


def result_fields() -> list[str]:
    """The keys of real result documents: succeeded, failed, cancelled, and stored in GridFS."""
    from reactor import model

    now = datetime.now(UTC)
    job = model.Job(
        doc_id=1, key="j", has_job_id=True, command="echo", args={}, fence=1, run=1,
        attempt=1, owner="o", started_at=now,
    )  # fmt: skip
    results = [
        model.Result(job, model.Status.SUCCEEDED, "w", now, value=1),
        model.Result(job, model.Status.FAILED, "w", now, error=model.ErrorInfo("E", "m")),
        model.Result(job, model.Status.CANCELLED, "w", now, cancel=model.CancelRequest("status")),
    ]
    return sorted({key for r in results for key in r.to_doc()} | {"result_ref"})


@pytest.mark.parametrize("field", sorted(set(job_fields()) | set(result_fields())))
def test_the_readme_tables_name_every_document_field(field: str) -> None:
    """Every field of the job and result documents is named, in backticks, in the README."""
    tables = readme_section("## Job documents") + readme_section("## Result documents")
    assert re.search(rf"`{field}`", tables)


def test_the_readme_names_every_http_endpoint() -> None:
    """Each route the reactor serves is in the README's endpoint table."""
    from reactor.web.health import build_app

    paths = [route.path for route in build_app(cast(Any, None)).routes]  # type: ignore[attr-defined]
    assert paths
    for path in paths:
        assert f"| `{path}` |" in README


def fixture_names() -> list[str]:
    """The pytest fixtures ``reactor.testing.fixtures`` defines."""
    tree = ast.parse((ROOT / "reactor" / "testing" / "fixtures.py").read_text())
    return [
        node.name
        for node in tree.body
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and any("fixture" in ast.unparse(d) for d in node.decorator_list)
    ]


def public_api() -> list[str]:
    """The names users import: ``reactor``, ``reactor.testing`` and the testing fixtures."""
    import reactor
    import reactor.testing

    return sorted({*reactor.__all__, *reactor.testing.__all__, *fixture_names()})


@pytest.mark.parametrize("name", public_api())
def test_the_readme_names_every_public_python_name(name: str) -> None:
    """Every public name of the package and its testing harness is in the README."""
    assert re.search(rf"\b{name}\b", README)


def test_every_job_error_type_is_in_the_error_table() -> None:
    """Each JobError subclass, a possible ``error.type`` of a result, has a row in docs/jobs.md."""
    from reactor import errors

    kinds = {
        name
        for name, value in vars(errors).items()
        if isinstance(value, type) and issubclass(value, errors.JobError)
    }
    # HandlerFailed carries the type name of what the handler raised, never its own.
    kinds -= {"JobError", "HandlerFailed"}
    jobs_page = (ROOT / "docs" / "jobs.md").read_text()
    assert sorted(k for k in kinds if f"| `{k}` |" not in jobs_page) == []


def test_every_metric_is_in_the_operations_guide() -> None:
    """Each Prometheus series the reactor exports has a row in docs/operations.md."""
    from reactor.metrics import Metrics

    names = {family.name for family in Metrics().registry.collect()}
    guide = (ROOT / "docs" / "operations.md").read_text()
    assert names
    assert sorted(n for n in names if f"| `{n}` |" not in guide) == []


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


def test_the_readme_names_every_api_route() -> None:
    """Each /api route (method and path) is named in the README's endpoint table."""
    from datetime import UTC, datetime
    from pathlib import Path as FsPath

    from reactor.registry import Registry
    from reactor.web.api import ApiParts, Auth, Tokens, routers

    parts = ApiParts(cast(Any, None), Registry([]), Auth(Tokens("t", None)), "jobs", "results",
                     FsPath("/tmp"), 60.0, lambda: datetime.now(UTC))  # fmt: skip
    table = readme_section("## HTTP endpoints and logs")
    named = [(method, route.path) for make in routers() for route in make(parts).routes
             for method in getattr(route, "methods", ())]  # fmt: skip
    assert len(named) >= 17
    for method, path in named:
        assert re.search(rf"`{method} {re.escape(path)}(\?[^`]*)?`", table), (method, path)
