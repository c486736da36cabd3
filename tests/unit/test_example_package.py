"""examples/reactor-example-handlers installs, registers its entry points, and its handlers work."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "reactor-example-handlers"

LIST_ENTRY_POINTS = """
import json
from importlib.metadata import entry_points
from reactor.handler import options_of, default_runs
found = {}
for ep in entry_points(group="reactor.handlers"):
    func = ep.load()
    found[ep.name] = {"value": ep.value, "runs": str(options_of(func).runs or default_runs(func))}
print(json.dumps(found))
"""


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example package installed into a fresh directory with the venv's hatchling."""
    target = tmp_path_factory.mktemp("example-site")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "--target",
            str(target),
            str(EXAMPLE),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    return target


@pytest.fixture
def example_on_path(installed: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The installed copy importable in this process."""
    monkeypatch.syspath_prepend(str(installed))
    yield
    sys.modules.pop("reactor_example_handlers", None)


def test_installs_with_metadata_and_entry_points(installed: Path) -> None:
    """The install leaves the package and a dist-info declaring the reactor.handlers group."""
    assert (installed / "reactor_example_handlers" / "__init__.py").is_file()
    (dist_info,) = installed.glob("reactor_example_handlers-*.dist-info")
    assert "[reactor.handlers]" in (dist_info / "entry_points.txt").read_text()


def test_entry_points_are_discoverable(installed: Path) -> None:
    """With the install on PYTHONPATH, importlib.metadata finds and loads both handlers."""
    env = {**os.environ, "PYTHONPATH": str(installed)}
    result = subprocess.run(
        [sys.executable, "-c", LIST_ENTRY_POINTS],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    found = json.loads(result.stdout)
    assert found["wordcount"] == {
        "value": "reactor_example_handlers:wordcount",
        "runs": "thread",
    }
    assert found["invert"] == {
        "value": "reactor_example_handlers:invert_image",
        "runs": "process",
    }


@pytest.mark.usefixtures("example_on_path")
def test_wordcount_counts_words() -> None:
    """The installed wordcount handler counts words, case-insensitively, most common first."""
    from reactor_example_handlers import wordcount

    result = wordcount(text="the cat and the hat and THE bat", top=2)
    assert result == {"words": 8, "distinct": 5, "top": [["the", 3], ["and", 2]]}


def test_the_examples_own_tests_pass() -> None:
    """The example's test suite, run with its own pytest settings, passes."""
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=EXAMPLE,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
