"""A seed-style app.py of plain functions runs unchanged with REACTOR_HANDLER_MODULES."""

from __future__ import annotations

import sys
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pymongo.asynchronous.database import AsyncDatabase

from reactor import workdir
from reactor.client import new_job, wait_for_results
from reactor.config import Settings
from tests.integration.reactors import running

Db = AsyncDatabase[dict[str, Any]]

# The polling loop's file, as its users have it: plain functions, no imports from the reactor.
SEED_APP = """
def add(a, b=1):
    return {"sum": a + b}


def write_report(text="hello"):
    with open("out.txt", "w") as f:
        f.write(text)
    return "out.txt"


def explode(message="boom"):
    raise ValueError(message)
"""


@pytest.fixture
def app_py(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The seed app.py, under a fresh module name (this process may load several)."""
    monkeypatch.setattr(sys, "path", list(sys.path))
    name = f"app_{uuid.uuid4().hex[:8]}"
    path = tmp_path / "app" / f"{name}.py"
    path.parent.mkdir()
    path.write_text(textwrap.dedent(SEED_APP))
    yield path
    sys.modules.pop(name, None)


async def test_a_seed_app_runs_unchanged(settings: Settings, db: Db, app_py: Path) -> None:
    """Its functions are commands in the CPU pool; a value is a result, an exception a failure."""
    async with running(settings, handler_modules=str(app_py)) as reactor:
        assert {"add", "write_report", "explode"} <= set(reactor.registry.names())
        await db.jobs.insert_many(
            [
                new_job("add", {"a": 2, "b": 3}, "sum"),
                new_job("explode", {"message": "no paper"}, "boom"),
            ]
        )
        results = await wait_for_results(db, ["sum", "boom"], timeout_s=60)
    assert results["sum"]["status"] == "succeeded"
    assert results["sum"]["result"] == {"sum": 5}
    assert results["sum"]["handler"] == f"{app_py.stem}:add"
    failed = results["boom"]
    assert failed["status"] == "failed"
    assert (failed["error"]["type"], failed["error"]["message"]) == ("ValueError", "no paper")


async def test_a_relative_write_lands_in_the_job_directory(
    settings: Settings, db: Db, app_py: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """open('out.txt', 'w') in a plain function writes <jobs_root>/<job_id>/out.txt."""
    monkeypatch.chdir(tmp_path)  # the workers start here: a wrong landing stays out of the checkout
    async with running(settings, handler_modules=str(app_py)):
        await db.jobs.insert_one(new_job("write_report", {"text": "seed"}, "report-1"))
        result = (await wait_for_results(db, ["report-1"], timeout_s=60))["report-1"]
    assert result["status"] == "succeeded", result
    assert not (tmp_path / "out.txt").exists()
    assert (workdir.job_dir(settings.jobs_root, "report-1") / "out.txt").read_text() == "seed"
