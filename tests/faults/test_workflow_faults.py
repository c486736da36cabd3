"""Workflows under faults (issue 16): a reactor killed between a step's end and the next step's
creation, a connection cut while a fan-out joins, every reactor restarted mid-workflow. Each
ends with one job per step element, one final workflow state, and no step run before its inputs
were complete. Three reactors each."""

from __future__ import annotations

import signal
import time

import pytest

from tests.faults.fault_checks import (
    PROBE_BOUND_S,
    READY_BOUND_S,
    Checks,
    check_alive_and_processing,
    check_no_overlap,
    check_ready_after,
    check_recovery,
    fault_window,
)
from tests.faults.fault_harness import Cluster
from tests.faults.fault_processes import STOP_BOUND_S, wait_until
from tests.faults.fault_records import now
from tests.faults.workflow_checks import (
    StatusLog,
    check_final_once,
    check_inputs_complete,
    check_one_job_per_element,
    seconds_until,
    steps,
    submit_workflow,
    wait_split_started,
    wait_workflow,
)

pytestmark = [pytest.mark.faults, pytest.mark.timeout(300)]

PAGES = 9


def check_workflow(checks: Checks, cluster: Cluster, workflow_id: str, log: StatusLog) -> None:
    with checks.check("the workflow finished after the fault"):
        began = now()
        done = wait_workflow(cluster, workflow_id)
        checks.measured["workflow_final_s"] = round(now() - began, 2)
        assert done["status"] == "succeeded", done.get("error")
    with checks.check("one job per step element"):
        check_one_job_per_element(cluster, workflow_id, PAGES)
    with checks.check("one final workflow state"):
        check_final_once(log)
    with checks.check("no step run while its inputs were incomplete"):
        check_inputs_complete(cluster, workflow_id, PAGES)
    log.stop()


def test_sigkill_between_a_finished_step_and_the_next(make_cluster) -> None:
    """The reactor that finished the split is SIGKILLed before it could create the pages (its
    own change event was held back by stalled change streams): another reactor sees the
    split's final status and creates them, a grace period later."""
    cluster: Cluster = make_cluster()
    log = StatusLog(cluster).start()
    ends_at = now() + 6.0  # past the grace of the insert's checks
    submit_workflow(cluster, "wk", steps(PAGES, {"until": ends_at}, seconds=0.5), PAGES)
    split = wait_split_started(cluster, "wk")
    victim = next(r for r in cluster.reactors if r.pid == split.host_pid)
    survivors = [r for r in cluster.reactors if r is not victim]
    time.sleep(seconds_until(ends_at - 1.0))
    checks = Checks(cluster, "workflow-sigkill")
    with fault_window() as window:
        cluster.double.hook("stall_change_streams")
        wait_until(lambda: (cluster.db.jobs.find_one({"job_id": "wk.split"}) or {}).get("status")
                   == "succeeded", 30, "the split's final status")  # fmt: skip
        with checks.check("killed before the next step existed"):
            assert cluster.db.jobs.count_documents({"workflow.step": "pages"}) == 0
        victim.send(signal.SIGKILL)
        victim.wait_exit(STOP_BOUND_S)
        cluster.double.hook("resume_change_streams")
    check_workflow(checks, cluster, "wk", log)
    with checks.check("no attempt on two processes at once"):
        check_no_overlap(cluster)
    with checks.check("readiness after the fault"):
        check_ready_after(cluster, [r.name for r in survivors], window["end"], READY_BOUND_S)
    with checks.check("alive and processing after the fault"):
        check_alive_and_processing(cluster, survivors, PROBE_BOUND_S, "wk")
    checks.verify()


def test_a_connection_cut_while_a_fan_out_joins(make_cluster) -> None:
    """Every element ends inside a 6 s blackhole, so their final statuses and the decision to
    create the join all wait for MongoDB: when it returns, the join is created once, with every
    element's result."""
    cluster: Cluster = make_cluster()
    log = StatusLog(cluster).start()
    ends_at = now() + 8.0
    submit_workflow(cluster, "wc", steps(PAGES, {"seconds": 1.0}, until=ends_at), PAGES)
    wait_until(lambda: cluster.db.jobs.count_documents({"workflow.step": "pages"}) == PAGES,
               30, "the elements")  # fmt: skip
    time.sleep(seconds_until(ends_at - 0.5))
    with fault_window() as window:
        cluster.proxy.blackhole()
        time.sleep(6.0)  # the cut's length is the scenario
    cluster.proxy.forward()
    checks = Checks(cluster, "workflow-cut")
    check_workflow(checks, cluster, "wc", log)
    ids = [j for j in cluster.submitted if j.startswith("wc.")]
    check_recovery(checks, cluster, ids, window, tag="wc")
    checks.verify()


def test_every_reactor_restarted_mid_workflow(make_cluster) -> None:
    """SIGKILL all three reactors while the elements run in their CPU pools, start them again:
    the elements' leases expire and they run again, the join is created once."""
    cluster: Cluster = make_cluster()
    log = StatusLog(cluster).start()
    submit_workflow(cluster, "wr", steps(PAGES, {"seconds": 0.5}, "wf_cpu_page", seconds=3.0),
                    PAGES)  # fmt: skip
    pages = [f"wr.pages.{i}" for i in range(PAGES)]
    wait_until(lambda: sum(1 for j in pages for e in cluster.executions().get(j, [])
                           if not e.ended) >= 2, 60, "elements running")  # fmt: skip
    checks = Checks(cluster, "workflow-restart")
    with fault_window() as window:
        for reactor in cluster.reactors:
            reactor.send(signal.SIGKILL)
        for reactor in cluster.reactors:
            reactor.wait_exit(STOP_BOUND_S)
        for reactor in cluster.reactors:
            reactor.start()
        for reactor in cluster.reactors:
            reactor.wait_serving()
    check_workflow(checks, cluster, "wr", log)
    with checks.check("no attempt on two processes at once"):
        check_no_overlap(cluster)
    with checks.check("readiness after the restart"):
        check_ready_after(cluster, [r.name for r in cluster.reactors], window["end"],
                          READY_BOUND_S)  # fmt: skip
    with checks.check("alive and processing after the restart"):
        check_alive_and_processing(cluster, cluster.reactors, PROBE_BOUND_S, "wr", starts=2)
    checks.verify()
