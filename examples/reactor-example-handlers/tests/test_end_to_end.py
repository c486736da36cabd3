"""The example handlers behind a running reactor: jobs in, results out, files in the job dir."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from reactor.testing.harness import RunningReactor

pytestmark = pytest.mark.anyio


async def test_wordcount_job_returns_the_counts(reactor_harness: RunningReactor) -> None:
    """A wordcount job, submitted like any client would, succeeds with the counts."""
    result = await reactor_harness.submit_and_wait("wordcount", {"text": "to be or not to be"})
    assert result["status"] == "succeeded"
    assert result["result"]["top"][:2] == [["to", 2], ["be", 2]]


async def test_invert_job_writes_the_negative_in_the_job_directory(
    reactor_harness: RunningReactor,
) -> None:
    """The CPU-pool handler reads its input from the job directory and writes the negative."""
    job_dir = reactor_harness.job_dir("neg-1")
    job_dir.mkdir(parents=True)
    cv2.imwrite(str(job_dir / "scan.png"), np.full((4, 6), 200, dtype=np.uint8))
    result = await reactor_harness.submit_and_wait(
        "invert", {"image": "scan.png"}, job_id="neg-1", timeout_s=120
    )
    assert result["status"] == "succeeded", result.get("error")
    assert (cv2.imread(str(job_dir / "inverted.png"), cv2.IMREAD_GRAYSCALE) == 55).all()


async def test_a_bad_argument_is_a_failed_result_not_a_crash(
    reactor_harness: RunningReactor,
) -> None:
    """Bad input ends as a failed result naming InvalidArguments; the reactor keeps serving."""
    failed = await reactor_harness.submit_and_wait("wordcount", {"top": 3})
    assert (failed["status"], failed["error"]["type"]) == ("failed", "InvalidArguments")
    after = await reactor_harness.submit_and_wait("wordcount", {"text": "still here"})
    assert after["status"] == "succeeded"
