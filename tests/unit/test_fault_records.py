"""The fault suite's execution records and its overlap rule (tests/faults/fault_records.py)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.faults.fault_records import RECORDS_ENV, Execution, Grace, Recorder, load, overlaps


def execution(token: str, kind: str, pid: int, times: list[float]) -> Execution:
    return Execution(
        job_id="j",
        token=token,
        attempt=1,
        run=None,
        pid=pid,
        ppid=1,
        kind=kind,
        start=times[0],
        times=times,
        ended=True,
        stopped=False,
    )


def test_spans_that_intersect_overlap_by_the_shared_time() -> None:
    """Two executions running 10-12 and 11-13 overlap for 1 s."""
    a = execution("a", "loop", 100, [10.0, 11.0, 12.0])
    b = execution("b", "loop", 200, [11.0, 12.5, 13.0])
    (found,) = overlaps({"j": [a, b]})
    assert found.seconds == pytest.approx(1.0)


def test_an_execution_starting_after_the_last_line_of_another_does_not_overlap() -> None:
    """A re-run that starts after the old execution's last line is not concurrent with it."""
    a = execution("a", "process", 100, [10.0, 11.0])
    b = execution("b", "process", 200, [11.5, 14.0])
    assert overlaps({"j": [a, b]}) == []


def test_a_grace_excuses_only_in_process_lines_of_its_pid() -> None:
    """After SIGCONT, a frozen reactor's loop lines inside the grace do not count; its CPU
    worker's lines, and lines after the grace, do."""
    rerun = execution("r", "loop", 300, [20.0, 25.0])
    resumed = execution("a", "loop", 100, [10.0, 21.0])  # its only late line is in the grace
    late = execution("b", "loop", 100, [10.0, 21.0, 24.0])  # still running after the grace
    worker = execution("c", "process", 100, [10.0, 21.0])  # a worker is no in-process handler
    grace = [Grace(100, 20.5, 22.5)]
    assert overlaps({"j": [resumed, rerun]}, grace) == []
    assert len(overlaps({"j": [late, rerun]}, grace)) == 1
    assert len(overlaps({"j": [worker, rerun]}, grace)) == 1


@dataclass
class Ctx:
    job_id: str = "job-1"
    attempt: int = 2


def test_a_recorded_execution_reads_back_with_its_lines(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Recorder's start, ticks and end read back as one ended execution with its token."""
    monkeypatch.setenv(RECORDS_ENV, str(tmp_path))
    record = Recorder(Ctx(), "thread")
    record.tick()
    value = record.end()
    (found,) = load(tmp_path)["job-1"]
    assert found.token == value["token"]
    assert found.attempt == 2
    assert found.ended
    assert len(found.times) == 3
