"""The harness itself, without a fault: what every scenario measures against."""

from __future__ import annotations

import pytest
from fault_harness import (
    Cluster,
    check_alive_and_processing,
    check_no_overlap,
    check_one_outcome_each,
    mixed_jobs,
)

pytestmark = pytest.mark.faults


@pytest.mark.timeout(300)
def test_without_faults_every_job_has_one_outcome_and_every_reactor_works(make_cluster) -> None:
    """With no fault, 24 mixed jobs end succeeded once each, none overlapping, all reactors busy."""
    cluster: Cluster = make_cluster()
    ids = cluster.submit(mixed_jobs("base", 24))
    cluster.wait_final(ids, 120)
    check_one_outcome_each(cluster, ids)
    check_no_overlap(cluster)
    check_alive_and_processing(cluster, cluster.reactors, 60, "base")
