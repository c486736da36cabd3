"""The example handlers' own logic, called directly (no reactor, no MongoDB)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from reactor import InputError, InvalidArguments, JobContext

from reactor_example_handlers import count_words, invert_image, wordcount


def make_ctx(workdir: Path) -> JobContext:
    return JobContext(
        job_id="j1",
        command="invert",
        attempt=1,
        workdir=workdir,
        settings={"max_image_pixels": 10_000},
    )


def test_count_words_is_case_insensitive_and_ranked() -> None:
    """Words are counted without regard to case, most common first."""
    result = count_words("To be, or not to be: that is the question. TO BE!", top=2)
    assert result == {"words": 12, "distinct": 8, "top": [["to", 3], ["be", 3]]}


def test_wordcount_reads_a_file_in_the_job_directory(tmp_path: Path) -> None:
    """With ``path`` the handler counts the words of that file."""
    (tmp_path / "in.txt").write_text("don't stop, don't stop", encoding="utf-8")
    assert wordcount(path=tmp_path / "in.txt")["top"] == [["don't", 2], ["stop", 2]]


@pytest.mark.parametrize("kwargs", [{}, {"text": "a", "path": Path("x")}, {"text": "a", "top": -1}])
def test_wordcount_rejects_bad_arguments(kwargs: dict[str, object]) -> None:
    """Neither or both of ``text`` and ``path``, or a negative ``top``, are invalid arguments."""
    with pytest.raises(InvalidArguments):
        wordcount(**kwargs)


def test_wordcount_rejects_a_binary_file(tmp_path: Path) -> None:
    """A file that is not UTF-8 is an input error, not a crash."""
    (tmp_path / "blob").write_bytes(b"\xff\xfe\x00")
    with pytest.raises(InputError, match="not UTF-8"):
        wordcount(path=tmp_path / "blob")


def test_invert_image_writes_the_negative(tmp_path: Path) -> None:
    """Every pixel of the output is 255 minus the input's, in the job directory."""
    pixels = np.array([[[0, 10, 200], [255, 128, 1]]], dtype=np.uint8)
    cv2.imwrite(str(tmp_path / "in.png"), pixels)
    result = invert_image(make_ctx(tmp_path), image=tmp_path / "in.png", output="out.png")
    assert result == {"output": "out.png", "width": 2, "height": 1, "channels": 3}
    assert (cv2.imread(str(tmp_path / "out.png")) == 255 - pixels).all()


def test_invert_image_refuses_images_over_the_pixel_limit(tmp_path: Path) -> None:
    """An image above ``max_image_pixels`` is rejected before it is decoded."""
    cv2.imwrite(str(tmp_path / "big.png"), np.zeros((200, 200), dtype=np.uint8))
    with pytest.raises(InputError, match="more than 10000"):
        invert_image(make_ctx(tmp_path), image=tmp_path / "big.png")


def test_invert_image_rejects_a_non_image(tmp_path: Path) -> None:
    """A file that is not an image is an input error."""
    (tmp_path / "note.png").write_text("not a picture")
    with pytest.raises(InputError, match="not an image"):
        invert_image(make_ctx(tmp_path), image=tmp_path / "note.png")
