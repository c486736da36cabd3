"""reactor.testing.harness: a real reactor inside a test, directly and through the fixture."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from reactor.errors import RegistryError
from reactor.testing.fixtures import reactor_harness
from reactor.testing.harness import RunningReactor, running_reactor
from tests.unit.harness_handlers import fail_loudly, shout, square, write_note

__all__ = ["reactor_harness"]  # a fixture, used by name

ROOT = Path(__file__).resolve().parents[2]


async def test_running_reactor_serves_a_mapping_of_handlers() -> None:
    """Loop, thread and process handlers given as a mapping each produce their result."""
    handlers = {"shout": shout, "fail_loudly": fail_loudly, "square": square}
    async with running_reactor(handlers) as reactor:
        shouted = await reactor.submit_and_wait("shout", {"text": "hi"})
        squared = await reactor.submit_and_wait("square", {"n": 12})
        failed = await reactor.submit_and_wait("fail_loudly", {"reason": "no paper"})
        stored = reactor.db.results.count_documents({})
    assert (shouted["status"], shouted["result"]) == ("succeeded", "HI")
    assert squared["result"] == 144
    assert (failed["status"], failed["error"]["type"]) == ("failed", "ValueError")
    assert stored == 3


async def test_the_job_directory_is_the_harness_own(tmp_path: Path) -> None:
    """Files land in job_dir(job_id), under the jobs_root given (or a temporary one)."""
    async with running_reactor({"write_note": write_note}, jobs_root=tmp_path) as reactor:
        result = await reactor.submit_and_wait("write_note", {"text": "x"}, job_id="n1")
        assert reactor.job_dir("n1") == tmp_path / "n1"
        assert (reactor.job_dir("n1") / "note.txt").read_text() == "x"
    assert result["result"] == "note.txt"


async def test_without_handlers_the_installed_entry_points_serve() -> None:
    """handlers=None serves the installed commands, such as the built-in echo."""
    async with running_reactor() as reactor:
        result = await reactor.submit_and_wait("echo", {"a": 1})
    assert result["result"] == {"a": 1}


async def test_settings_pass_through(tmp_path: Path) -> None:
    """Keyword settings reach the reactor; a fresh database is used."""
    async with running_reactor({"shout": shout}, max_jobs=3, db="mine") as reactor:
        assert (reactor.settings.max_jobs, reactor.settings.db) == (3, "mine")
        assert reactor.settings.http_port == 0


async def test_a_failing_assertion_inside_reads_as_itself() -> None:
    """An assertion failing inside the block propagates as that AssertionError, not a group."""
    with pytest.raises(AssertionError, match="inside the block"):
        async with running_reactor({"shout": shout}):
            raise AssertionError("inside the block")


async def test_a_broken_handler_module_fails_at_start() -> None:
    """A handler_modules setting that cannot load stops the harness with the registry's error."""
    with pytest.raises(RegistryError, match="does not exist"):
        async with running_reactor(handler_modules="/no/such/app.py"):
            pass


def test_the_fixture_serves_its_handlers_in_a_sync_test(reactor_harness: RunningReactor) -> None:
    """reactor_harness works from plain synchronous code too (it runs in its own thread)."""
    import anyio

    reactor_harness.db.jobs.insert_one({"job_id": "s1", "command": "shout", "args": {"text": "a"}})
    assert anyio.run(reactor_harness.wait_for, "s1")["result"] == "A"


@pytest.fixture
def reactor_handlers() -> dict[str, object]:
    """What this module's reactor_harness serves."""
    return {"shout": shout}


# ------------------------------------------------------------------ under each test plugin

PLUGIN_TEST = """
import pytest
from tests.unit.harness_handlers import shout, square
from reactor.testing.fixtures import mongo_client, mongo_double, mongo_uri, reactor_harness
from reactor.testing.harness import running_reactor

{preamble}


@pytest.fixture
def reactor_handlers():
    return {{"shout": shout, "square": square}}


{mark}
async def test_fixture(reactor_harness):
    assert (await reactor_harness.submit_and_wait("shout", {{"text": "hi"}}))["result"] == "HI"
    assert (await reactor_harness.submit_and_wait("square", {{"n": 7}}))["result"] == 49


{mark}
async def test_context_manager():
    async with running_reactor({{"shout": shout}}) as reactor:
        assert (await reactor.submit_and_wait("shout", {{"text": "yo"}}))["result"] == "YO"


{mark}
async def test_mongo_client(mongo_client):
    assert (await mongo_client.admin.command("ping"))["ok"] == 1
"""

MODES = {
    "pytest-asyncio strict": (
        ["-p", "asyncio", "-o", "asyncio_mode=strict"],
        "",
        "@pytest.mark.asyncio",
    ),
    "pytest-asyncio auto": (["-p", "asyncio", "-o", "asyncio_mode=auto"], "", ""),
    "anyio": (
        ["-p", "no:asyncio"],
        "@pytest.fixture\ndef anyio_backend():\n    return 'asyncio'\n",
        "@pytest.mark.anyio",
    ),
}


def run_pytest(folder: Path, *options: str) -> subprocess.CompletedProcess[str]:
    """pytest in a subprocess, on ``folder`` alone, with warnings as errors."""
    ini = (
        "[pytest]\nasyncio_default_fixture_loop_scope = function\n"
        if "asyncio" in options
        else "[pytest]\n"
    )
    (folder / "pytest.ini").write_text(ini)
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-W", "error", *options],
        cwd=folder,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "HOME": str(folder)},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.mark.parametrize("mode", sorted(MODES))
def test_the_harness_works_under_each_plugin(tmp_path: Path, mode: str) -> None:
    """The fixture, the context manager and mongo_client all pass under strict, auto and anyio."""
    options, preamble, mark = MODES[mode]
    (tmp_path / "test_plugin.py").write_text(PLUGIN_TEST.format(preamble=preamble, mark=mark))
    result = run_pytest(tmp_path, *options)
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(r"\b3 passed\b", result.stdout), result.stdout


# ------------------------------------------------------------------ the documented example


def documented_example() -> str:
    """The code block after the ``docs-example: testing`` marker in docs/handlers.md."""
    text = (ROOT / "docs" / "handlers.md").read_text()
    marker = text.index("<!-- docs-example: testing -->")
    start = text.index("```python\n", marker) + len("```python\n")
    return text[start : text.index("```", start)]


@pytest.mark.parametrize("mode", ["pytest-asyncio strict", "pytest-asyncio auto"])
def test_the_documented_testing_example_passes_as_written(tmp_path: Path, mode: str) -> None:
    """The testing example of docs/handlers.md, copied verbatim into a test file, passes."""
    (tmp_path / "test_documented_example.py").write_text(documented_example())
    result = run_pytest(tmp_path, *MODES[mode][0])
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(r"\b2 passed\b", result.stdout), result.stdout
    assert "skipped" not in result.stdout
