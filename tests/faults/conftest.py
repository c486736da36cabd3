"""The fault suite: real ``reactor run`` processes, the double in its own process, a proxy between.

Marked ``faults`` and left out of ``make test``; ``make faults`` runs it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.faults.fault_harness import Cluster


@pytest.fixture
def make_cluster(tmp_path: Path) -> Iterator[Callable[..., Cluster]]:
    """Start a cluster (settings as keyword overrides); everything is torn down after the test."""
    made: list[Cluster] = []

    def make(
        reactors: int = 3, extra_env: dict[str, dict[str, str]] | None = None, **settings: Any
    ) -> Cluster:
        cluster = Cluster(tmp_path / f"c{len(made)}", reactors, extra_env, **settings)
        made.append(cluster)
        return cluster.start()

    yield make
    for cluster in made:
        cluster.close()
