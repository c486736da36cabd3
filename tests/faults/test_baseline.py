"""The harness itself, without a fault: the control every scenario is measured against."""

from __future__ import annotations

import pytest

from tests.faults.fault_checks import (
    FINAL_BOUND_S,
    PROBE_BOUND_S,
    Checks,
    check_alive_and_processing,
    check_no_overlap,
    check_one_outcome_each,
)
from tests.faults.fault_harness import Cluster, mixed_jobs

pytestmark = [pytest.mark.faults, pytest.mark.timeout(300)]


def test_without_faults_every_job_has_one_outcome_and_every_reactor_works(make_cluster) -> None:
    """With no fault, 30 mixed jobs end succeeded once each, none overlapping, all reactors busy."""
    cluster: Cluster = make_cluster()
    ids = cluster.submit(mixed_jobs("base", 30))
    checks = Checks(cluster, "baseline")
    with checks.check("jobs final"):
        cluster.wait_final(ids, FINAL_BOUND_S)
    with checks.check("one final status and one result per job"):
        check_one_outcome_each(cluster, ids)
    with checks.check("no attempt on two processes at once"):
        check_no_overlap(cluster)
    with checks.check("every reactor runs a probe"):
        check_alive_and_processing(cluster, cluster.reactors, PROBE_BOUND_S, "base")
    checks.verify()
