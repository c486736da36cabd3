"""Job directories are created per job and paths may not leave them."""

from __future__ import annotations

from pathlib import Path

import pytest

from reactor import workdir
from reactor.errors import PathEscape


def test_prepare_creates_the_job_directory(tmp_path: Path) -> None:
    """The job's directory is created under the root, named after the job."""
    path = workdir.prepare(tmp_path / "jobs", "job-1")
    assert path.is_dir()
    assert path == (tmp_path / "jobs" / "job-1").resolve()


@pytest.mark.parametrize("job_id", ["../../etc", "a/b", "..", "", "x" * 300, "ünïcode"])
def test_unsafe_job_ids_get_a_digest_name(tmp_path: Path, job_id: str) -> None:
    """A job_id that is not a safe file name maps to a stable digest inside the root."""
    path = workdir.prepare(tmp_path, job_id)
    assert path.parent == tmp_path.resolve()
    assert path.name.startswith("job-")
    assert workdir.dir_name(job_id) == path.name


def test_relative_paths_resolve_inside(tmp_path: Path) -> None:
    """A relative path is resolved against the job directory."""
    assert workdir.resolve_inside(tmp_path, Path("in/page.png")) == tmp_path / "in/page.png"


@pytest.mark.parametrize("escape", ["../x", "/etc/passwd", "a/../../b"])
def test_paths_that_escape_are_rejected(tmp_path: Path, escape: str) -> None:
    """A path that resolves outside the job directory raises PathEscape."""
    with pytest.raises(PathEscape, match="escapes the job directory"):
        workdir.resolve_inside(tmp_path, Path(escape))


def test_symlink_out_of_the_directory_is_rejected(tmp_path: Path) -> None:
    """A symlink inside the job directory that points outside it does not let a path escape."""
    (tmp_path / "job").mkdir()
    (tmp_path / "job" / "link").symlink_to("/etc")
    with pytest.raises(PathEscape):
        workdir.resolve_inside(tmp_path / "job", Path("link/passwd"))
