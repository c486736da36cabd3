"""docs/configuration.md and the README list every setting exactly as ``Settings`` defines it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

import pytest

from reactor.config import Settings, env_name

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "configuration.md"
SCRIPT = ROOT / "scripts" / "config_table.py"
BEGIN = "<!-- config-table:begin"
END = "<!-- config-table:end -->"
README = ROOT / "README.md"
SUMMARY_BEGIN = "<!-- settings-summary:begin"
SUMMARY_END = "<!-- settings-summary:end -->"
# Defaults computed at start-up and the words the table uses for them.
COMPUTED = {
    "cpu_workers": "number of cores",
    "worker_name": "hostname:pid",
    "sweep_s": "half of `lease_s`",
}


def embedded_table(path: Path = DOC, begin: str = BEGIN, end: str = END) -> str:
    text = path.read_text()
    start = text.index("\n", text.index(begin)) + 1
    return text[start : text.index(end)]


def table_rows(table: str, width: int) -> dict[str, list[str]]:
    """A table's rows keyed by environment variable (duplicates fail here)."""
    lines = [line for line in table.splitlines() if line.startswith("| `")]
    rows: dict[str, list[str]] = {}
    for line in lines:
        cells = [cell.strip() for cell in line.strip().strip("|").split(" | ")]
        assert len(cells) == width, line
        env = cells[0].strip("`")
        assert env not in rows, f"{env} documented twice"
        rows[env] = cells
    return rows


def documented_rows() -> dict[str, list[str]]:
    """The full table of docs/configuration.md."""
    return table_rows(embedded_table(), 4)


def summary_rows() -> dict[str, list[str]]:
    """The README's compact table: variable, default, meaning."""
    return table_rows(embedded_table(README, SUMMARY_BEGIN, SUMMARY_END), 3)


def row(field: str) -> list[str]:
    return documented_rows()[env_name(field)]


def coerce(text: str, default: Any) -> Any:
    """A documented default (between backticks) converted to the field default's type."""
    assert text.startswith("`"), text
    assert text.endswith("`"), text
    raw = text[1:-1]
    if isinstance(default, bool):
        return raw == "true"
    return type(default)(raw)


def test_table_matches_the_generator() -> None:
    """The embedded table is exactly what scripts/config_table.py prints."""
    printed = subprocess.run(
        [sys.executable, str(SCRIPT)], capture_output=True, text=True, check=True, cwd=ROOT
    ).stdout
    assert embedded_table() == printed


def test_generator_check_mode_passes() -> None:
    """``config_table.py --check`` agrees that both documents are current."""
    result = subprocess.run([sys.executable, str(SCRIPT), "--check"], cwd=ROOT, check=False)
    assert result.returncode == 0


def test_every_field_is_documented_and_nothing_else() -> None:
    """One row per Settings field: none missing, none extra."""
    assert set(documented_rows()) == {env_name(name) for name in Settings.model_fields}


def test_the_readme_names_every_setting_and_nothing_else() -> None:
    """The README's settings table has one row per Settings field: none missing, none extra."""
    assert set(summary_rows()) == {env_name(name) for name in Settings.model_fields}


def test_the_readme_rows_agree_with_the_full_table() -> None:
    """Each README row shows the default and description of the same row in configuration.md."""
    full = documented_rows()
    for env, (_, default, meaning) in summary_rows().items():
        assert [default, meaning] == full[env][2:], env


def test_readme_table_matches_the_generator() -> None:
    """The README's settings table is exactly what ``config_table.py --summary`` prints."""
    printed = subprocess.run(
        [sys.executable, str(SCRIPT), "--summary"],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    ).stdout
    assert embedded_table(README, SUMMARY_BEGIN, SUMMARY_END) == printed


@pytest.mark.parametrize("name", list(Settings.model_fields))
def test_flag_matches_the_field(name: str) -> None:
    """The CLI flag column is ``--`` plus the field name with dashes."""
    assert row(name)[1] == f"`--{name.replace('_', '-')}`"


@pytest.mark.parametrize("name", list(Settings.model_fields))
def test_default_matches_the_field(name: str) -> None:
    """Static defaults equal the field's default; computed ones are described in words."""
    field = Settings.model_fields[name]
    shown = row(name)[2]
    if name in COMPUTED:
        assert shown == COMPUTED[name]
        return
    assert field.default_factory is None, f"{name} is computed: describe it in words"
    assert coerce(shown, field.default) == field.default


def test_computed_defaults_are_really_computed() -> None:
    """Each default shown in words belongs to a field computed at start-up."""
    for name in COMPUTED:
        field = Settings.model_fields[name]
        derived_from_zero = field.default == 0  # sweep_s: 0 means half of lease_s
        assert field.default_factory is not None or derived_from_zero, name


@pytest.mark.parametrize("name", list(Settings.model_fields))
def test_description_is_the_fields(name: str) -> None:
    """The description column is the field's description, with a Literal's allowed values."""
    field = Settings.model_fields[name]
    expected = field.description or ""
    if get_origin(field.annotation) is Literal:
        expected += " Values: " + ", ".join(f"`{v}`" for v in get_args(field.annotation)) + "."
    assert row(name)[3] == expected.replace("|", "\\|")
