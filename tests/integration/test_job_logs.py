"""A job's own log: what its handler logs and prints, kept per run in its directory, bounded,
and still written to standard output as JSON, wherever the handler runs."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from pymongo.asynchronous.database import AsyncDatabase

from reactor import joblog, workdir
from reactor.cli.main import main as reactor_main
from reactor.client import new_job, wait_for_results
from reactor.config import Settings
from reactor.logging import configure
from tests.integration import observe_handlers
from tests.integration.reactors import running

Db = AsyncDatabase[dict[str, Any]]


@pytest.fixture
def stdout_json() -> Iterator[io.StringIO]:
    """The reactor's log lines, as JSON, in a buffer (this test's only)."""
    stream = io.StringIO()
    configure("json", "info", stream=stream)
    yield stream
    logging.getLogger().handlers.clear()


def log_of(settings: Settings, job_id: str, run: int = 1) -> list[dict[str, Any]]:
    path = joblog.path_of(workdir.job_dir(settings.jobs_root, job_id), run)
    return [json.loads(line) for line in path.read_text().splitlines()]


def events(lines: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """(event, text) pairs: the logged events and the printed texts."""
    return [(line["event"], str(line.get("text", line.get("tag", "")))) for line in lines]


@pytest.mark.parametrize("command", ["loud_loop", "loud_thread", "loud_process"])
async def test_what_a_handler_logs_and_prints_is_kept_with_the_job(
    settings: Settings, db: Db, stdout_json: io.StringIO, command: str
) -> None:
    """Its structlog lines, a library's stdlib lines and its prints land in the job's log."""
    async with running(settings, observe_handlers.registry(), job_log_max_bytes=100_000):
        await db.jobs.insert_one(new_job(command, {"tag": "t1"}, "j1"))
        await wait_for_results(db, ["j1"], timeout_s=30)
    lines = log_of(settings, "j1")
    found = events(lines)
    assert ("from_handler", "t1") in found
    assert ("handler_print", "printed t1 0") in found
    assert any(line["event"] == "library line t1 0" for line in lines)
    assert all(line.get("job_id") == "j1" for line in lines)
    assert found[0][0] == "job_started"
    assert found[-1][0] == "job_finished"
    if command == "loud_process":
        assert ("handler_print", "unterminated t1") in found


async def test_log_lines_still_reach_standard_output_as_json(
    settings: Settings, db: Db, stdout_json: io.StringIO
) -> None:
    """A loop handler's log line and print also go to the reactor's stdout, as JSON lines."""
    async with running(settings, observe_handlers.registry(), job_log_max_bytes=100_000):
        await db.jobs.insert_one(new_job("loud_loop", {"tag": "out"}, "s1"))
        await wait_for_results(db, ["s1"], timeout_s=30)
    shipped = [json.loads(line) for line in stdout_json.getvalue().splitlines()]
    mine = [line for line in shipped if line.get("job_id") == "s1"]
    assert {"from_handler", "handler_print", "library line out 0"} <= {m["event"] for m in mine}


async def test_concurrent_jobs_each_keep_only_their_own_lines(
    settings: Settings, db: Db, stdout_json: io.StringIO
) -> None:
    """Three thread jobs and two loop jobs logging at once: every log holds its own tag only."""
    jobs = [("loud_thread", f"th{i}") for i in range(3)] + [
        ("loud_loop", f"lo{i}") for i in range(2)
    ]
    async with running(settings, observe_handlers.registry(), job_log_max_bytes=100_000):
        await db.jobs.insert_many(
            [new_job(cmd, {"tag": tag, "lines": 20, "pause_s": 0.002}, tag) for cmd, tag in jobs]
        )
        await wait_for_results(db, [tag for _, tag in jobs], timeout_s=30)
    for _, tag in jobs:
        lines = log_of(settings, tag)
        tags = {line["tag"] for line in lines if line["event"] == "from_handler"}
        prints = [line["text"] for line in lines if line["event"] == "handler_print"]
        assert tags == {tag}
        assert prints == [f"printed {tag} {i}" for i in range(20)]


async def test_a_log_past_its_bound_is_cut_with_one_note(
    settings: Settings, db: Db, stdout_json: io.StringIO
) -> None:
    """Lines past job_log_max_bytes are dropped; the file ends with one job_log_truncated line."""
    async with running(settings, observe_handlers.registry(), job_log_max_bytes=2048):
        await db.jobs.insert_one(new_job("loud_loop", {"tag": "big", "lines": 200}, "b1"))
        await wait_for_results(db, ["b1"], timeout_s=30)
    path = joblog.path_of(workdir.job_dir(settings.jobs_root, "b1"), 1)
    lines = log_of(settings, "b1")
    assert path.stat().st_size <= 2048 + 400
    assert [line["event"] for line in lines].count("job_log_truncated") == 1
    assert lines[-1]["event"] == "job_log_truncated"


async def test_reactor_logs_prints_a_jobs_log(
    settings: Settings, db: Db, stdout_json: io.StringIO, capsys: pytest.CaptureFixture[str]
) -> None:
    """``reactor logs JOB_ID`` prints the job's lines, the printed text among them."""
    async with running(settings, observe_handlers.registry(), job_log_max_bytes=100_000):
        await db.jobs.insert_one(new_job("loud_loop", {"tag": "cli"}, "c1"))
        await wait_for_results(db, ["c1"], timeout_s=30)
    argv = ["logs", "c1", "--mongo-uri", settings.mongo_uri, "--db", settings.db,
            "--jobs-root", str(settings.jobs_root)]  # fmt: skip
    capsys.readouterr()
    code = await anyio.to_thread.run_sync(reactor_main, argv)
    out = capsys.readouterr().out
    assert code == 0
    assert "handler_print" in out
    assert 'text="printed cli 0"' in out


def test_log_file_is_per_run_inside_the_job_directory(tmp_path: Path) -> None:
    """Run 2's log is a different file from run 1's, both under the job directory."""
    first = joblog.path_of(tmp_path, 1)
    second = joblog.path_of(tmp_path, 2)
    assert first != second
    assert first.parent == second.parent == tmp_path / ".reactor"
