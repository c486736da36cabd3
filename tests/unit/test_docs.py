"""The user-facing pages name the contract: settings, commands, fixtures, the migration steps."""

from __future__ import annotations

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
