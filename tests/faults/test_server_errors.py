"""MongoDB answering, badly: step-down errors, stalled streams, lost history, a restart with
no data. Three reactors each, through the proxy; the faults come from the double's hooks."""

from __future__ import annotations

import time

import pytest

from tests.faults.fault_checks import Checks, check_recovery, fault_window, start_outage_jobs
from tests.faults.fault_harness import Cluster, mixed_jobs
from tests.faults.fault_processes import wait_until

pytestmark = [pytest.mark.faults, pytest.mark.timeout(420)]

WRITES = ["insert", "update", "delete", "findAndModify"]  # retryable writes: MongoDB labels them
OTHERS = ["find", "aggregate", "getMore", "count", "distinct", "listIndexes", "createIndexes"]
ERRORS = 30


@pytest.mark.parametrize(
    ("code", "name"), [(10107, "NotWritablePrimary"), (91, "ShutdownInProgress")]
)
def test_thirty_consecutive_step_down_errors(make_cluster, code: int, name: str) -> None:
    """30 writes answered with ``code`` and the RetryableWriteError label, 30 reads and 30 pings
    with ``code`` alone, as a primary stepping down answers, while the outage jobs run (long
    ones of each kind, a burst, 12 mixed): the reactors ride it out."""
    cluster: Cluster = make_cluster()
    tag = f"err{code}"
    ids = start_outage_jobs(cluster, tag, 10, into_s=0.3)  # errors are used up in about 1 s
    checks = Checks(cluster, tag)
    message = f"{name}: injected by the fault suite"
    with fault_window() as window:
        hook = cluster.double.hook
        hook("fail_next", n=ERRORS, code=code, labels=["RetryableWriteError"], commands=WRITES,
             message=message)  # fmt: skip
        hook("fail_next", n=ERRORS, code=code, commands=OTHERS, message=message)
        hook("fail_next", n=ERRORS, code=code, commands=["ping"], message=message)
        with checks.check("the reactors consumed the injected errors"):
            wait_until(lambda: cluster.double.pending_failures() == 0, 60, "90 injected errors")
    checks.measured["fault_s"] = round(window["end"] - window["start"], 2)
    check_recovery(checks, cluster, ids, window, tag=tag)
    checks.verify()


def test_stalled_change_streams(make_cluster) -> None:
    """Every change-stream getMore held unanswered for 10 s (readiness must notice after
    REACTOR_READY_STALL_S=4), 15 jobs inserted meanwhile; then the streams flow again."""
    cluster: Cluster = make_cluster()
    ids = cluster.submit(mixed_jobs("stall", 15))
    cluster.wait_started(ids, 6)
    with fault_window() as window:
        cluster.double.hook("stall_change_streams")
        ids += cluster.submit(mixed_jobs("stalled", 15))
        time.sleep(10)  # the stall's length is the scenario
    cluster.double.hook("resume_change_streams")
    checks = Checks(cluster, "stall")
    checks.measured["fault_s"] = round(window["end"] - window["start"], 2)
    check_recovery(checks, cluster, ids, window, tag="stall")
    checks.verify()


def test_lost_history_is_caught_up(make_cluster) -> None:
    """30 jobs inserted while the streams are stalled, then the history is forgotten and the
    connections dropped: resuming fails with 286, and only the catch-up scan can find the jobs
    (the sweep is set to 600 s). Instantaneous, so readiness is only checked after it."""
    cluster: Cluster = make_cluster(sweep_s=600)
    with fault_window() as window:
        cluster.double.hook("stall_change_streams")
        ids = cluster.submit(mixed_jobs("lost", 30))
        cluster.double.hook("forget_history")
        cluster.double.hook("drop_connections")
        cluster.double.hook("resume_change_streams")
    checks = Checks(cluster, "lost-history")
    check_recovery(checks, cluster, ids, window, faulted=[], tag="lost")
    checks.verify()


def test_double_restarted_empty(make_cluster) -> None:
    """The double is SIGKILLed with every job slot busy and started again 3 s later with no data
    on the same port: the reactors reconnect, ensure their indexes again and run 30 new jobs;
    nothing is written for a job the new database does not hold."""
    cluster: Cluster = make_cluster()
    before = start_outage_jobs(cluster, "before", 3, into_s=1.5)
    with fault_window() as window:
        cluster.double.kill()
        time.sleep(3)  # how long MongoDB is down is the scenario
        cluster.double.start()
    after = cluster.submit(mixed_jobs("after", 30))
    checks = Checks(cluster, "restart-empty")
    checks.measured["fault_s"] = round(window["end"] - window["start"], 2)
    check_recovery(checks, cluster, after, window, tag="restart")
    with checks.check("indexes ensured again on the new database"):
        for collection in (cluster.db.jobs, cluster.db.results):
            keys = [list(ix["key"]) for ix in collection.list_indexes() if ix.get("unique")]
            assert ["job_id"] in keys, f"{collection.name}: no unique job_id index ({keys})"
    with checks.check("no result for a job the new database does not hold"):
        ghosts = cluster.db.results.count_documents({"job_id": {"$in": before}})
        assert ghosts == 0, f"{ghosts} results written for jobs of the lost database"
    checks.verify()
