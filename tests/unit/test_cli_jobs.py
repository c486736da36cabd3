"""The client subcommands against the double: the documents they write and what they print.

Only the document effects are checked here: the reactor's side of cancel and retry (stopping a
run, starting the next) is tested with the reactor. Where a command waits for a result, a thread
plays the reactor: it watches ``jobs`` and writes the result the reactor would.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from importlib.metadata import version
from typing import Any

import pytest
from pymongo import MongoClient
from pymongo.database import Database

from reactor import model
from reactor.cli import build_parser, main
from reactor.testing import MongoDouble

Db = Database[dict[str, Any]]


@pytest.fixture
def db(mongo_double: MongoDouble, monkeypatch: pytest.MonkeyPatch) -> Iterator[Db]:
    """A database on the test's double, which the CLI reaches through REACTOR_* variables."""
    name = f"cli_{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("REACTOR_MONGO_URI", mongo_double.uri)
    monkeypatch.setenv("REACTOR_DB", name)
    monkeypatch.setenv("REACTOR_CONNECT_TIMEOUT_S", "5")
    client: MongoClient[dict[str, Any]] = MongoClient(mongo_double.uri, tz_aware=True)
    yield client[name]
    client.close()


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


class PlaysReactor:
    """A thread that waits for one update of a job, then writes ``result`` (as a reactor would)."""

    def __init__(self, db: Db, result: dict[str, Any]) -> None:
        self.db, self.result = db, result
        self.watching = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> PlaysReactor:
        self.thread.start()
        assert self.watching.wait(30), "the watcher did not start"
        return self

    def __exit__(self, *exc: object) -> None:
        self.thread.join(30)

    def _run(self) -> None:
        match = [{"$match": {"operationType": "update"}}]
        with self.db.jobs.watch(match) as stream:
            self.watching.set()
            next(stream)
        self.db.results.replace_one({"job_id": self.result["job_id"]}, self.result, upsert=True)


# ------------------------------------------------------------------------------ submit


def test_a_duplicate_job_id_is_one_line_with_its_own_exit_code(
    db: Db, capsys: pytest.CaptureFixture[str]
) -> None:
    """Submitting an existing --job-id exits 4 with one line naming it, and no traceback."""
    assert run(capsys, "submit", "echo", "--job-id", "dup-1")[0] == 0
    code, out, err = run(capsys, "submit", "echo", "--job-id", "dup-1", "--wait")
    assert code == 4
    assert out == ""
    (line,) = err.splitlines()
    assert line.startswith("reactor: a job with job_id 'dup-1' already exists")
    assert db.jobs.count_documents({"job_id": "dup-1"}) == 1


def test_submit_sets_priority_and_a_delay_as_run_at(
    db: Db, capsys: pytest.CaptureFixture[str]
) -> None:
    """--priority sets priority; --delay-s sets run_at that many seconds after now."""
    before = datetime.now(UTC)
    code, out, _ = run(capsys, "submit", "echo", "--priority", "5", "--delay-s", "30")
    after = datetime.now(UTC)
    assert code == 0
    job = db.jobs.find_one({"job_id": out.strip()})
    assert job is not None
    assert job[model.PRIORITY] == 5
    # BSON dates keep milliseconds: allow the truncation below ``before``.
    lower = before + timedelta(seconds=30) - timedelta(milliseconds=1)
    assert lower <= job[model.RUN_AT] <= after + timedelta(seconds=30)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2031-05-04T10:00:00+02:00", datetime(2031, 5, 4, 8, 0, tzinfo=UTC)),
        ("2031-05-04T10:00:00", datetime(2031, 5, 4, 10, 0, tzinfo=UTC)),
    ],
)
def test_submit_run_at_takes_iso_8601_with_utc_as_default_zone(
    db: Db, capsys: pytest.CaptureFixture[str], text: str, expected: datetime
) -> None:
    """--run-at is stored as a BSON date; a time without a zone is UTC."""
    code, out, _ = run(capsys, "submit", "echo", "--run-at", text)
    assert code == 0
    job = db.jobs.find_one({"job_id": out.strip()})
    assert job is not None
    assert job[model.RUN_AT] == expected
    assert model.PRIORITY not in job


def test_submit_refuses_run_at_with_delay(capsys: pytest.CaptureFixture[str]) -> None:
    """--run-at and --delay-s exclude each other (a usage error, exit 2)."""
    with pytest.raises(SystemExit) as stopped:
        main(["submit", "echo", "--run-at", "2031-01-01T00:00:00", "--delay-s", "5"])
    assert stopped.value.code == 2
    assert "not allowed with argument" in capsys.readouterr().err


# ------------------------------------------------------------------------------ cancel


def test_cancel_requests_cancellation_of_a_queued_job(
    db: Db, capsys: pytest.CaptureFixture[str]
) -> None:
    """cancel sets cancel_requested and its time; asking again keeps the first time."""
    db.jobs.insert_one({"job_id": "c1", "command": "sleep", "args": {}})
    assert run(capsys, "cancel", "c1")[:2] == (0, "cancel requested for c1\n")
    first = db.jobs.find_one({"job_id": "c1"})
    assert first is not None
    assert first[model.CANCEL_REQUESTED] is True
    assert isinstance(first[model.CANCEL_REQUESTED_AT], datetime)
    assert run(capsys, "cancel", "c1")[0] == 0
    again = db.jobs.find_one({"job_id": "c1"})
    assert again is not None
    assert again[model.CANCEL_REQUESTED_AT] == first[model.CANCEL_REQUESTED_AT]
    assert model.STATUS not in again  # the reactor, not the client, records the cancellation


@pytest.mark.parametrize("status", ["succeeded", "failed", "cancelled"])
def test_cancel_refuses_a_finished_job(
    db: Db, capsys: pytest.CaptureFixture[str], status: str
) -> None:
    """A finished job cannot be cancelled: exit 6, one line, the document untouched."""
    db.jobs.insert_one({"job_id": "f1", "command": "echo", "status": status})
    code, _, err = run(capsys, "cancel", "f1")
    assert code == 6
    expected = f"job 'f1' is already {status}: only a queued or running job can be cancelled"
    assert err == f"reactor: {expected} (see: reactor status f1)\n"
    job = db.jobs.find_one({"job_id": "f1"})
    assert job is not None
    assert model.CANCEL_REQUESTED not in job


@pytest.mark.parametrize("command", ["cancel", "retry", "status"])
def test_an_unknown_job_exits_5(db: Db, capsys: pytest.CaptureFixture[str], command: str) -> None:
    """cancel, retry and status of a job_id nobody submitted exit 5 with one line."""
    code, out, err = run(capsys, command, "ghost")
    assert (code, out) == (5, "")
    assert err.startswith("reactor: no job with job_id 'ghost'")
    assert len(err.splitlines()) == 1


def test_cancel_wait_returns_the_cancelled_result_of_the_current_run(
    db: Db, capsys: pytest.CaptureFixture[str]
) -> None:
    """--wait ignores the earlier run's result and prints the cancelled one of this run."""
    db.jobs.insert_one({"job_id": "w1", "command": "sleep", "status": "running", "run": 2})
    db.results.insert_one({"job_id": "w1", "status": "failed", "run": 1})
    cancelled = {"job_id": "w1", "status": "cancelled", "run": 2, "cancelled_via": "x"}
    with PlaysReactor(db, cancelled):
        code, out, _ = run(capsys, "cancel", "w1", "--wait", "--timeout", "60")
    assert code == 0
    assert json.loads(out)["status"] == "cancelled"


@pytest.mark.parametrize(
    ("command", "job"),
    [
        ("cancel", {"job_id": "s1", "command": "sleep", "status": "running", "run": 2}),
        ("retry", {"job_id": "s1", "command": "echo", "status": "failed"}),
    ],
)
def test_wait_never_takes_an_earlier_runs_result(
    db: Db, capsys: pytest.CaptureFixture[str], command: str, job: dict[str, Any]
) -> None:
    """With only the previous run's result stored, --wait times out (3) instead of printing it."""
    db.jobs.insert_one(job)
    db.results.insert_one({"job_id": "s1", "status": "failed", "run": 1})
    code, out, err = run(capsys, command, "s1", "--wait", "--timeout", "1")
    assert (code, out) == (3, "")
    assert "no result for s1 within 1 s" in err


def test_cancel_wait_times_out_with_exit_3(db: Db, capsys: pytest.CaptureFixture[str]) -> None:
    """Without a reactor to write the result, --wait gives up after --timeout with exit 3."""
    db.jobs.insert_one({"job_id": "t1", "command": "sleep"})
    code, _, err = run(capsys, "cancel", "t1", "--wait", "--timeout", "0.5")
    assert code == 3
    assert "no result for t1 within 0.5 s" in err


# ------------------------------------------------------------------------------ retry


@pytest.mark.parametrize("status", ["succeeded", "failed", "cancelled"])
def test_retry_queues_a_finished_job_again(
    db: Db, capsys: pytest.CaptureFixture[str], status: str
) -> None:
    """retry sets status queued and drops the cancel request; the next run is announced."""
    db.jobs.insert_one(
        {
            "job_id": "r1",
            "command": "echo",
            "status": status,
            "run": 3,
            "cancel_requested": True,
            "cancel_requested_at": datetime.now(UTC),
        }
    )
    assert run(capsys, "retry", "r1")[:2] == (0, "r1 queued again for run 4\n")
    job = db.jobs.find_one({"job_id": "r1"})
    assert job is not None
    assert job[model.STATUS] == "queued"
    assert model.CANCEL_REQUESTED not in job
    assert model.CANCEL_REQUESTED_AT not in job
    assert job[model.RUN] == 3  # the reactor counts the run when it starts it


@pytest.mark.parametrize("status", [None, "queued", "running"])
def test_retry_refuses_an_unfinished_job(
    db: Db, capsys: pytest.CaptureFixture[str], status: str | None
) -> None:
    """A queued or running job is not retried: exit 6 with a line that says what to do."""
    doc: dict[str, Any] = {"job_id": "u1", "command": "echo"}
    if status is not None:
        doc["status"] = status
    db.jobs.insert_one(doc)
    code, _, err = run(capsys, "retry", "u1")
    assert code == 6
    assert f"job 'u1' is {status or 'queued'}, not finished" in err
    assert "reactor cancel u1" in err
    job = db.jobs.find_one({"job_id": "u1"})
    assert job is not None
    assert job.get("status") == status


def test_retry_wait_waits_for_the_next_runs_result(
    db: Db, capsys: pytest.CaptureFixture[str]
) -> None:
    """--wait skips the finished run's result and prints the new run's."""
    db.jobs.insert_one({"job_id": "rw", "command": "echo", "status": "failed"})
    db.results.insert_one({"job_id": "rw", "status": "failed"})  # run 1, the field absent
    with PlaysReactor(db, {"job_id": "rw", "status": "succeeded", "run": 2}):
        code, out, _ = run(capsys, "retry", "rw", "--wait")
    assert code == 0
    assert json.loads(out)["run"] == 2


# ------------------------------------------------------------------------------ list, status


def _seed(db: Db) -> None:
    now = datetime(2031, 1, 1, tzinfo=UTC)
    db.jobs.insert_many(
        [
            {"job_id": "j1", "command": "ocr"},
            {"job_id": "j2", "command": "ocr", "status": "failed", "finished_at": now, "run": 2},
            {
                "job_id": "j3",
                "command": "echo",
                "status": "running",
                "attempt": 2,
                "progress": {"fraction": 0.4, "message": "page 2 of 5", "updated_at": now},
            },
            {"job_id": "j4", "command": "echo", "status": "failed", "finished_at": now},
        ]
    )


def test_list_is_a_table_newest_first(db: Db, capsys: pytest.CaptureFixture[str]) -> None:
    """The table has one row per job, newest first, with run, attempt, progress and time."""
    _seed(db)
    code, out, _ = run(capsys, "list")
    assert code == 0
    header, *rows = out.splitlines()
    assert header.split() == [
        "JOB_ID",
        "COMMAND",
        "STATUS",
        "RUN",
        "ATTEMPT",
        "PROGRESS",
        "UPDATED",
    ]
    assert [row.split()[0] for row in rows] == ["j4", "j3", "j2", "j1"]
    j3 = rows[1].split()
    assert j3[:6] == ["j3", "echo", "running", "1", "2", "40%"]
    assert rows[0].split()[-2:] == ["2031-01-01", "00:00:00"]
    assert rows[3].split()[2] == "queued"  # no status: queued


def test_list_status_failed_shows_the_dead_letters(
    db: Db, capsys: pytest.CaptureFixture[str]
) -> None:
    """--status failed lists exactly the failed jobs; --command and --limit narrow it."""
    _seed(db)
    assert [
        r.split()[0] for r in run(capsys, "list", "--status", "failed")[1].splitlines()[1:]
    ] == ["j4", "j2"]
    narrowed = run(capsys, "list", "--status", "failed", "--command", "ocr")[1].splitlines()[1:]
    assert [r.split()[0] for r in narrowed] == ["j2"]
    assert len(run(capsys, "list", "--limit", "1")[1].splitlines()) == 2
    queued = run(capsys, "list", "--status", "queued")[1].splitlines()[1:]
    assert [r.split()[0] for r in queued] == ["j1"]


def test_list_json_prints_one_relaxed_json_document_per_line(
    db: Db, capsys: pytest.CaptureFixture[str]
) -> None:
    """--json gives JSON lines with dates as ISO strings (relaxed extended JSON)."""
    _seed(db)
    lines = run(capsys, "list", "--json", "--status", "failed")[1].splitlines()
    docs = [json.loads(line) for line in lines]
    assert [doc["job_id"] for doc in docs] == ["j4", "j2"]
    assert docs[0]["finished_at"] == {"$date": "2031-01-01T00:00:00Z"}


def test_status_shows_run_attempt_progress_and_history(
    db: Db, capsys: pytest.CaptureFixture[str]
) -> None:
    """The status page reads as lines: status with run and attempt, progress, result, history."""
    _seed(db)
    db.results.insert_one(
        {
            "job_id": "j3",
            "status": "failed",
            "run": 1,
            "duration_ms": 12.5,
            "error": {"type": "InputError", "message": "not an image\nmore"},
            "history": [
                {
                    "run": 1,
                    "status": "failed",
                    "attempts": 3,
                    "error_type": "GaveUp",
                    "finished_at": datetime(2030, 12, 31, tzinfo=UTC),
                }
            ],
        }
    )
    code, out, _ = run(capsys, "status", "j3")
    assert code == 0
    page = dict(line.split(None, 1) for line in out.splitlines() if line.strip())
    assert page["status"] == "running (run 1, attempt 2)"
    assert page["progress"] == "40% page 2 of 5 (at 2031-01-01 00:00:00)"
    assert page["result"] == "failed (run 1) in 12.5 ms"
    assert page["error"] == "InputError: not an image"
    assert (
        page["history"] == "run 1: failed after 3 attempts (GaveUp), finished 2030-12-31 00:00:00"
    )


def test_status_json_prints_the_raw_documents(db: Db, capsys: pytest.CaptureFixture[str]) -> None:
    """--json prints {job, result} as stored."""
    _seed(db)
    code, out, _ = run(capsys, "status", "j2", "--json")
    doc = json.loads(out)
    assert code == 0
    assert (doc["job"]["job_id"], doc["job"]["run"], doc["result"]) == ("j2", 2, None)


# ------------------------------------------------------------------------------ help, version


def test_version_prints_the_installed_version(capsys: pytest.CaptureFixture[str]) -> None:
    """reactor --version prints the distribution's version."""
    with pytest.raises(SystemExit) as stopped:
        main(["--version"])
    assert stopped.value.code == 0
    assert capsys.readouterr().out == f"reactor {version('mongo-reactor')}\n"


def _subparsers() -> dict[str, Any]:
    parser = build_parser()
    (action,) = [a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction"]
    return dict(action.choices)  # type: ignore[attr-defined]


@pytest.mark.parametrize("name", sorted(_subparsers()))
def test_every_subcommand_help_describes_it_without_markup(name: str) -> None:
    """Each subcommand's --help has a description of its own, with no RST or Markdown marks."""
    text = _subparsers()[name].format_help()
    description = _subparsers()[name].description
    assert description
    assert len(description) > 40
    assert "`" not in text
    assert "`" not in build_parser().format_help()


def test_submit_help_shows_the_timeout_default() -> None:
    """submit --help says how long --wait waits by default."""
    assert "(default: 60)" in _subparsers()["submit"].format_help()


def test_handlers_lists_the_functions_of_a_handler_module(
    tmp_path: Any, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """reactor handlers --handler-modules app.py lists the file's functions as process commands."""
    stem = f"app_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{stem}.py").write_text("def shout(text):\n    return text.upper()\n")
    monkeypatch.setattr("sys.path", list(__import__("sys").path))
    try:
        code, out, _ = run(capsys, "handlers", "--handler-modules", str(tmp_path / f"{stem}.py"))
    finally:
        __import__("sys").modules.pop(stem, None)
    assert code == 0
    rows = {line.split()[0]: line.split() for line in out.splitlines()[1:]}
    assert rows["shout"][:3] == ["shout", "process", f"{stem}:shout"]
    assert "echo" in rows
