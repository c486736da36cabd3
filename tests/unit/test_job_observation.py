"""A job's own log and its cost, measured in this process: prints and log lines captured only
inside a job, the bound, and the meter's CPU and memory figures."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog

from reactor import joblog, usage
from reactor.logging import bind_job, configure


@pytest.fixture
def json_logs() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    configure("json", "info", stream=stream)
    yield stream
    logging.getLogger().handlers.clear()


def test_outside_a_job_printed_text_passes_through(capsys: pytest.CaptureFixture[str]) -> None:
    """With no job log current, a PrintTee writes text as it is."""
    tee = joblog.PrintTee(sys.stdout, "stdout")
    tee.write("plain text\n")
    assert capsys.readouterr().out == "plain text\n"


def test_inside_a_job_prints_and_log_lines_land_in_its_file(
    tmp_path: Path, json_logs: io.StringIO
) -> None:
    """A print, a structlog line and a stdlib line inside capture reach the job's file and stdout,
    with the job's fields; a line after it reaches stdout only."""
    path = tmp_path / "job" / joblog.LOG_DIR / "run-1.log.jsonl"
    with bind_job("j1", "cmd", 1), joblog.capture(joblog.Target(str(path), 10_000)):
        print("hello from print")
        structlog.get_logger("h").info("from_structlog", n=1)
        logging.getLogger("lib").warning("from stdlib")
    structlog.get_logger("h").info("after_the_job")
    kept = [json.loads(line) for line in path.read_text().splitlines()]
    shipped = [json.loads(line) for line in json_logs.getvalue().splitlines()]
    assert [k["event"] for k in kept] == ["handler_print", "from_structlog", "from stdlib"]
    assert kept[0]["text"] == "hello from print"
    assert all(k["job_id"] == "j1" for k in kept)
    assert [s["event"] for s in shipped] == [*(k["event"] for k in kept), "after_the_job"]


def test_a_job_log_stops_at_its_bound_with_one_note(tmp_path: Path) -> None:
    """Lines that would pass max_bytes are dropped; one job_log_truncated line says so."""
    path = tmp_path / "log.jsonl"
    log = joblog.JobLog(joblog.Target(str(path), 1000))
    for i in range(100):
        log.write(json.dumps({"event": "line", "i": i}))
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert lines[-1]["event"] == "job_log_truncated"
    assert [line["event"] for line in lines].count("job_log_truncated") == 1
    assert path.stat().st_size <= 1000 + 300
    assert joblog.read_lines(path, after=2, limit=3)[1] == 5


@pytest.mark.skipif(not usage.CLEAR_REFS.exists(), reason="needs Linux's /proc/self/clear_refs")
def test_the_meter_sees_a_tasks_own_peak_and_its_childs(monkeypatch: pytest.MonkeyPatch) -> None:
    """After a 300 MB task the next small one reports a small peak; a child's peak counts."""
    monkeypatch.setattr(os, "waitpid", usage._waitpid_noting_rusage)
    big, small, child = usage.Meter(), usage.Meter(), usage.Meter()
    with big.measure():
        block = bytearray(300 * 2**20)
        block[::4096] = b"\x01" * len(block[::4096])
        del block
    with small.measure():
        pass
    size = max(600, int(usage.peak_kib(True) / 1024) + 300)  # above this process's own size
    code = f"b = bytearray({size} * 2**20); b[::4096] = b'\\x01' * len(b[::4096])"
    with child.measure():
        subprocess.run([sys.executable, "-c", code], check=True)
    peaks = [m.usage.max_rss_mb if m.usage else None for m in (big, small, child)]
    assert None not in peaks
    big_mb, small_mb, child_mb = (float(p or 0) for p in peaks)
    assert big_mb >= 300
    assert small_mb < big_mb - 200
    assert child_mb >= size
    assert child.usage is not None
    assert (child.usage.cpu_s or 0) > 0
    assert usage.Usage(1.23456789, 0.5, 12.3456).to_doc() == {
        "wall_s": 1.234568, "cpu_s": 0.5, "max_rss_mb": 12.346,
    }  # fmt: skip
