"""``reactor workflow`` against the double: the documents it writes and what it prints (no
reactor runs here: the reactor's side is tested in tests/integration/test_workflows.py)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pymongo import MongoClient
from pymongo.database import Database

from reactor.cli import main
from reactor.testing import MongoDouble

Db = Database[dict[str, Any]]
STEPS = [{"name": "a", "command": "echo"}, {"name": "b", "command": "echo", "after": ["a"]}]


@pytest.fixture
def db(mongo_double: MongoDouble, monkeypatch: pytest.MonkeyPatch) -> Iterator[Db]:
    """A database on the test's double, reached through REACTOR_* variables."""
    name = f"cliwf_{uuid.uuid4().hex[:8]}"
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


def test_submit_inserts_a_yaml_workflow_and_refuses_its_id_twice(
    db: Db, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A YAML file is inserted (with created_at) and its id printed; again, exit 4."""
    path = tmp_path / "w.yaml"
    path.write_text("workflow_id: w1\nsteps:\n  - {name: a, command: echo}\n")
    assert run(capsys, "workflow", "submit", str(path)) == (0, "w1\n", "")
    stored = db.workflows.find_one({"workflow_id": "w1"})
    assert stored is not None
    assert stored["steps"] == [{"name": "a", "command": "echo"}]
    assert isinstance(stored["created_at"], datetime)
    code, _, err = run(capsys, "workflow", "submit", str(path))
    assert code == 4
    assert "already exists" in err


def test_an_invalid_workflow_file_is_refused_with_the_reason(
    db: Db, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A cycle exits 2 with one line saying so, and nothing is inserted."""
    path = tmp_path / "w.json"
    steps = [{"name": "a", "command": "x", "after": ["b"]},
             {"name": "b", "command": "x", "after": ["a"]}]  # fmt: skip
    path.write_text(json.dumps({"workflow_id": "w", "steps": steps}))
    code, _, err = run(capsys, "workflow", "submit", str(path))
    assert code == 2
    assert "cycle" in err
    assert db.workflows.count_documents({}) == 0


def test_run_makes_a_workflow_from_a_template_with_typed_parameters(
    db: Db, capsys: pytest.CaptureFixture[str]
) -> None:
    """--param values are JSON when they parse (batch=4 is a number), else strings."""
    code, out, _ = run(capsys, "workflow", "run", "ocr_document", "--param", "document=a.tif",
                       "--param", "batch=4", "--workflow-id", "doc")  # fmt: skip
    assert (code, out) == (0, "doc\n")
    stored = db.workflows.find_one({"workflow_id": "doc"})
    assert stored is not None
    assert stored["template"]["params"]["batch"] == 4
    assert stored["steps"][0]["args"]["document"] == "a.tif"
    code, _, err = run(capsys, "workflow", "run", "nope")
    assert code == 5
    assert "no template named 'nope'" in err


def test_templates_are_stored_and_listed_beside_the_shipped_ones(
    db: Db, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """template put stores by name; template list shows it and the shipped ocr_document."""
    path = tmp_path / "t.json"
    path.write_text(json.dumps({"name": "mine", "description": "d", "steps": STEPS}))
    assert run(capsys, "workflow", "template", "put", str(path))[0] == 0
    code, out, _ = run(capsys, "workflow", "template", "list")
    assert code == 0
    assert "mine  (stored)  d" in out
    assert "ocr_document  (shipped)" in out


def test_cancel_and_retry_refuse_what_the_status_does_not_allow(
    db: Db, capsys: pytest.CaptureFixture[str]
) -> None:
    """Cancel of a finished workflow and retry of a running one exit 6; unknown ids exit 5;
    cancel of an unfinished one sets cancel_requested."""
    now = datetime.now(UTC)
    db.workflows.insert_many([
        {"workflow_id": "done", "steps": STEPS, "status": "failed", "finished_at": now},
        {"workflow_id": "busy", "steps": STEPS, "status": "running"},
    ])  # fmt: skip
    assert run(capsys, "workflow", "cancel", "done")[0] == 6
    assert run(capsys, "workflow", "retry", "busy")[0] == 6
    assert run(capsys, "workflow", "cancel", "ghost")[0] == 5
    assert run(capsys, "workflow", "cancel", "busy")[0] == 0
    busy = db.workflows.find_one({"workflow_id": "busy"})
    assert busy is not None
    assert busy["cancel_requested"] is True
    assert run(capsys, "workflow", "retry", "done")[0] == 0
    done = db.workflows.find_one({"workflow_id": "done"})
    assert done is not None
    assert done["status"] == "queued"


def test_status_shows_a_workflow_as_a_tree_of_its_steps(
    db: Db, capsys: pytest.CaptureFixture[str]
) -> None:
    """reactor status WORKFLOW_ID (no such job) prints the workflow's steps as a tree, with
    the unfinished jobs of a fan-out under their step."""
    states = {
        "a": {"status": "succeeded", "jobs": 1, "elements": 1, "done": 1,
              "counts": {"succeeded": 1}},
        "b": {"status": "running", "jobs": 3, "elements": 3, "done": 1,
              "counts": {"succeeded": 1, "running": 1, "queued": 1}},
    }  # fmt: skip
    db.workflows.insert_one({"workflow_id": "tree", "steps": STEPS, "status": "running",
                             "step_states": states,
                             "progress": {"steps_done": 1, "steps_total": 2,
                                          "elements_done": 1, "elements_total": 3}})  # fmt: skip
    db.jobs.insert_many([
        {"job_id": f"tree.b.{i}", "command": "echo", "status": status,
         "workflow": {"workflow_id": "tree", "step": "b", "index": i}}
        for i, status in enumerate(["succeeded", "running", "queued"])
    ])  # fmt: skip
    code, out, _ = run(capsys, "status", "tree")
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == "workflow  tree  running (run 1)"
    assert "progress  1 of 2 steps, 1 of 3 elements" in out
    assert lines[-3].startswith("└── b  running")
    assert lines[-2] == "    ├── tree.b.1  running"
    assert lines[-1] == "    └── tree.b.2  queued"
    assert run(capsys, "status", "ghost")[0] == 5
