"""``reactor demo --tour`` (and ``make demo``, which runs it after the samples) shows each
lifecycle capability once: cancel, re-run, priorities, a delayed job, progress, retry."""

from __future__ import annotations

import os
import re
import subprocess
import sys

TITLES = [
    "cancel a running job",
    "re-run a finished job",
    "priorities",
    "delayed job (run_at)",
    "progress",
    "retry with back-off",
]


def test_the_tour_shows_each_capability_once_as_documented() -> None:
    """Six steps, each marked ok (it behaved as documented), with what was seen and its time."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("REACTOR_")}
    done = subprocess.run(
        [sys.executable, "-m", "reactor.cli", "demo", "--tour"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,  # a hang, not a speed limit (the tour takes a few seconds)
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    lines = [line for line in done.stdout.splitlines() if line.startswith("[")]
    assert [line[6:29].strip() for line in lines] == TITLES, done.stdout
    assert all(line.startswith("[ok ]") for line in lines), done.stdout
    assert all(re.search(r"\(\d+\.\d\d s\)$", line) for line in lines), done.stdout
    by_title = dict(zip(TITLES, lines, strict=True))
    assert "started 10, 5, 0 (none), -5" in by_title["priorities"]
    assert "Retry('scanner busy on attempt 1') twice" in by_title["retry with back-off"]
    assert "history keeps run 1 (succeeded)" in by_title["re-run a finished job"]
    assert "demo-echo" not in done.stdout  # --tour: the tour alone
