"""Templates: stored once by name, run with parameters; the shipped ocr_document parses."""

from __future__ import annotations

from pathlib import Path

import pytest

from reactor.errors import InvalidWorkflow
from reactor.workflows import client, definition, templates

TEMPLATE = {
    "name": "t",
    "params": {"n": {}, "lang": {"default": "eng"}},
    "steps": [
        {
            "name": "a",
            "command": "c",
            "args": {
                "n": {"$param": "n"},
                "lang": {"$param": "lang"},
                "raw": {"$literal": {"$param": "n"}},
            },
        }
    ],
}


def test_parameters_replace_their_references_and_defaults_fill_the_rest() -> None:
    """Given values and defaults land in the steps; $literal keeps its content; the template
    and its values are recorded on the workflow."""
    doc = templates.instantiate(TEMPLATE, {"n": 3}, "w1")
    assert doc["steps"][0]["args"] == {"n": 3, "lang": "eng", "raw": {"$literal": {"$param": "n"}}}
    assert doc["template"] == {"name": "t", "params": {"n": 3, "lang": "eng"}}
    assert doc["workflow_id"] == "w1"
    assert templates.instantiate(TEMPLATE, {"n": 1})["workflow_id"].startswith("t-")


def test_an_unknown_or_missing_parameter_is_refused() -> None:
    """A parameter the template does not declare, or a required one not given, is an error."""
    with pytest.raises(InvalidWorkflow, match="no parameter 'x'"):
        templates.instantiate(TEMPLATE, {"n": 1, "x": 2})
    with pytest.raises(InvalidWorkflow, match="needs a value for parameter 'n'"):
        templates.instantiate(TEMPLATE, {})


def test_the_shipped_ocr_document_template_makes_a_valid_workflow() -> None:
    """ocr_document is shipped and parses: split, prepare and ocr per page (batched), join."""
    assert "ocr_document" in templates.builtin_names()
    shipped = templates.builtin("ocr_document")
    assert shipped is not None
    doc = templates.instantiate(shipped, {"document": "scan.tif"}, "doc")
    parsed = definition.of_workflow(doc)
    assert parsed.names == ("split", "prepare", "ocr", "join")
    assert parsed.step("ocr").batch == 2
    assert parsed.step("ocr").upstream == {"split", "prepare"}


def test_workflows_are_read_from_json_and_yaml_files(tmp_path: Path) -> None:
    """A .yaml and a .json file give the same document; a list is refused."""
    (tmp_path / "w.yaml").write_text("workflow_id: w\nsteps:\n  - name: a\n    command: echo\n")
    (tmp_path / "w.json").write_text(
        '{"workflow_id": "w", "steps": [{"name": "a", "command": "echo"}]}'
    )
    assert client.load_file(tmp_path / "w.yaml") == client.load_file(tmp_path / "w.json")
    (tmp_path / "bad.json").write_text("[1]")
    with pytest.raises(InvalidWorkflow, match="does not hold a document"):
        client.load_file(tmp_path / "bad.json")
