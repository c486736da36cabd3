"""The suite's conftest reports one skip reason repeated by many tests as one counted line."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

SUITE_CONFTEST = Path(__file__).resolve().parents[1] / "conftest.py"

SKIPPING_TESTS = """
import pytest

@pytest.fixture(params=["here", "elsewhere"])
def backend(request):
    if request.param == "elsewhere":
        pytest.skip("no engine answers")
    return request.param

def test_one(backend): pass
def test_two(backend): pass
def test_three(backend): pass
"""


def test_identical_setup_skips_are_grouped_with_a_count(tmp_path: Path) -> None:
    """Three tests skipped by one fixture for one reason give a single 'SKIPPED [3]' line."""
    (tmp_path / "tests" / "sub").mkdir(parents=True)
    shutil.copy(SUITE_CONFTEST, tmp_path / "tests" / "conftest.py")
    (tmp_path / "tests" / "sub" / "test_skips.py").write_text(SKIPPING_TESTS)
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-ra", "-p", "no:cacheprovider", "-p", "no:asyncio"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    skipped = [line for line in result.stdout.splitlines() if line.startswith("SKIPPED")]
    assert skipped == ["SKIPPED [3] tests/sub: no engine answers"]
