"""A workflow's directory: its step jobs run inside it and read only what is upstream of them."""

from __future__ import annotations

from pathlib import Path

import pytest

from reactor import workdir
from reactor.errors import PathEscape
from reactor.handler import JobContext
from reactor.workflows.model import Link


def link(step: str, index: int | None = None, closed: tuple[str, ...] = ()) -> dict[str, object]:
    return Link("scan-42", step, index, closed=closed).to_doc()


def test_step_jobs_run_in_their_steps_directories_inside_the_workflows(tmp_path: Path) -> None:
    """A one-job step runs in <workflow>/<step>; a for_each job in <workflow>/<step>/<i>; a
    plain job keeps its own directory."""
    root = workdir.workflow_dir(tmp_path, "scan-42")
    assert root == tmp_path / "_workflows" / "scan-42"
    assert workdir.place(tmp_path, "scan-42.split", link("split")).directory == root / "split"
    assert workdir.place(tmp_path, "scan-42.ocr.3", link("ocr", 3)).directory == root / "ocr" / "3"
    plain = workdir.place(tmp_path, "job-1")
    assert plain.directory == plain.root == tmp_path / "job-1"


def test_paths_resolve_in_the_workflow_and_stay_out_of_closed_steps(tmp_path: Path) -> None:
    """Upstream files and the workflow's own files resolve; a step not upstream and anything
    outside the workflow raise PathEscape."""
    place = workdir.prepare_place(tmp_path, "scan-42.ocr.0", link("ocr", 0, closed=("thumbs",)))
    root = place.root
    assert place.resolve("split/page-0001.png") == root / "split" / "page-0001.png"
    assert place.resolve("scan.tif") == root / "scan.tif"
    for bad in ("thumbs/x.png", "thumbs", "ocr/../thumbs/x", "../other/x", "/etc/passwd"):
        with pytest.raises(PathEscape):
            place.resolve(bad)


def test_a_handler_hands_its_files_on_relative_to_the_workflow(tmp_path: Path) -> None:
    """ctx.reference names a step's file as the next step's path argument names it; for a
    plain job it is the name inside its own directory."""
    place = workdir.prepare_place(tmp_path, "scan-42.ocr.2", link("ocr", 2))
    ctx = JobContext("scan-42.ocr.2", "ocr", 1, place.directory, root=place.root)
    assert ctx.reference("page-0003.hocr") == "ocr/2/page-0003.hocr"
    plain = JobContext("j", "ocr", 1, tmp_path / "j")
    assert plain.reference("out/x.png") == "out/x.png"
    with pytest.raises(PathEscape):
        ctx.reference("../../../elsewhere")
