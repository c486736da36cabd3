"""Job directories are created per job and paths may not leave them."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reactor import workdir
from reactor.errors import PathEscape

# Keys that look safe (the shape most job ids have) and arbitrary text (anything a client sends).
SAFE_LOOKING = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._-]{0,140}", fullmatch=True)
ANY_KEY = st.one_of(SAFE_LOOKING, st.text(max_size=200))


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
    assert path.name.startswith(workdir.HASHED_PREFIX)
    assert workdir.dir_name(job_id) == path.name


def test_safe_job_ids_keep_their_directory_names() -> None:
    """A filesystem-safe job_id is its own directory name, as it always was."""
    for job_id in ("job-1", "scan-0042", "a.b_c-d", "job-c78041eeebc9ab185df4274755f539b2"):
        assert workdir.dir_name(job_id) == job_id


def test_a_hashed_name_is_not_a_job_id_that_maps_to_itself() -> None:
    """The reported collision: an unsafe id and a job_id spelling the old hashed name differ."""
    unsafe = "../tenant-a/report"
    hashed = workdir.dir_name(unsafe)
    assert hashed.startswith("_job-")
    assert workdir.dir_name(hashed) != hashed  # a job_id spelled like it is hashed in turn
    old_style = "job-" + hashed.removeprefix("_job-")[:32]
    assert workdir.dir_name(old_style) == old_style != hashed


@given(ANY_KEY, ANY_KEY)
def test_two_different_job_keys_never_share_a_directory(first: str, second: str) -> None:
    """The job_id -> directory mapping is injective (property test over safe and arbitrary keys)."""
    if first != second:
        assert workdir.dir_name(first) != workdir.dir_name(second)


@given(ANY_KEY)
def test_every_directory_name_is_one_path_component(job_key: str) -> None:
    """Whatever the key, its directory name is a single, safe path component under the root."""
    name = workdir.dir_name(job_key)
    assert "/" not in name
    assert "\x00" not in name
    assert name not in {"", ".", ".."}
    assert len(name.encode()) <= 255
    assert (name == job_key) == workdir.is_safe(job_key)


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


@given(ANY_KEY)
def test_a_job_id_spelled_like_a_hashed_name_gets_another_directory(job_key: str) -> None:
    """The adversarial pair: a job whose id is another job's hashed directory name."""
    name = workdir.dir_name(job_key)
    if name != job_key:
        assert workdir.dir_name(name) != name


def test_paths_inside_containers_resolve_element_by_element(tmp_path: Path) -> None:
    """Lists, tuples, sets and mappings of paths resolve each path inside the job directory."""
    value = {"pages": [Path("a.png"), Path("b/c.png")], "pair": (Path("x"), 3), "n": "text"}
    resolved = workdir.resolve_paths(tmp_path, value)
    root = tmp_path.resolve()
    assert resolved == {
        "pages": [root / "a.png", root / "b/c.png"],
        "pair": (root / "x", 3),
        "n": "text",
    }
    assert workdir.resolve_paths(tmp_path, {Path("k")}) == {root / "k"}


def test_one_escaping_path_in_a_container_fails_the_whole_value(tmp_path: Path) -> None:
    """A single path leaving the job directory, however deep, raises PathEscape."""
    with pytest.raises(PathEscape, match="escapes"):
        workdir.resolve_paths(tmp_path, [[Path("ok.txt")], {"deep": Path("../../etc/passwd")}])
