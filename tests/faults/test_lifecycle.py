"""Cancellations and re-runs asked for during faults (issue 9): they take effect when MongoDB
returns, each with exactly one result. Three reactors each; the requests are written straight
to the double, as a client on the other side of the partition would."""

from __future__ import annotations

import datetime as dt
import signal
import time
from typing import Any

import pytest

from tests.faults.fault_checks import FINAL_BOUND_S, Checks, check_recovery, fault_window
from tests.faults.fault_harness import Cluster, JobSpec, mixed_jobs
from tests.faults.fault_processes import wait_until
from tests.faults.fault_records import TICK_S

pytestmark = [pytest.mark.faults, pytest.mark.timeout(420)]

CANCEL_BOUND_S = 20.0  # after the outage: reconnecting, then the 2 s of issue 9
RERUN_BOUND_S = 30.0


def cancel_by(how: str) -> dict[str, Any]:
    if how == "cancel_requested":
        return {"$set": {"cancel_requested": True, "cancel_requested_at": dt.datetime.now(dt.UTC)}}
    return {"$set": {"status": "cancelled"}}


def test_cancel_sent_during_an_outage_takes_effect_when_mongodb_returns(make_cluster) -> None:
    """During a 6 s refusal, cancel two running loop jobs, two running CPU jobs and two queued
    CPU jobs (half by ``cancel_requested``, half by ``status: cancelled``): within 20 s of the
    outage each is ``cancelled`` with one cancelled result naming the way it was asked, a
    running one has stopped executing, a queued one never started; the rest succeed."""
    cluster: Cluster = make_cluster()
    loops = [JobSpec(f"cancel-loop-{i}", "loop_job", 20.0) for i in range(3)]
    cpus = [JobSpec(f"cancel-cpu-{i}", "cpu_job", 20.0) for i in range(5)]  # 3 CPU slots in all
    others = mixed_jobs("cancel-other", 16)
    ids = cluster.submit([*loops, *cpus, *others])
    cluster.wait_started([j.job_id for j in cpus], 3)
    cluster.wait_started([j.job_id for j in loops], 3)
    runs = cluster.executions()
    running_cpu = [j.job_id for j in cpus if j.job_id in runs]
    queued_cpu = [j.job_id for j in cpus if j.job_id not in runs]
    targets = {
        loops[0].job_id: "cancel_requested",
        loops[1].job_id: "status",
        running_cpu[0]: "cancel_requested",
        running_cpu[1]: "status",
        queued_cpu[0]: "cancel_requested",
        queued_cpu[1]: "status",
    }
    with fault_window() as window:
        cluster.proxy.refuse()
        for job_id, how in targets.items():
            cluster.db.jobs.update_one({"job_id": job_id}, cancel_by(how))
        time.sleep(6)  # the outage's length is the scenario
    cluster.proxy.forward()
    checks = Checks(cluster, "cancel-outage")
    with checks.check("each cancel took effect within 20 s of the outage"):
        seen = wait_cancelled(cluster, list(targets), window["end"] + CANCEL_BOUND_S)
        checks.measured["cancelled_after_s"] = round(max(seen.values()) - window["end"], 2)
        time.sleep(10 * TICK_S)  # a handler still running would write ticks meanwhile
        check_stopped(cluster, seen)
    with checks.check("cancelled results say how they were asked for"):
        for job_id, how in targets.items():
            _, results = cluster.final_state([job_id])[job_id]
            vias = [r.get("cancelled_via") for r in results]
            assert vias == [how], f"{job_id}: cancelled_via {vias}, asked by {how}"
    with checks.check("a queued job cancelled never started"):
        started = [j for j in queued_cpu[:2] if j in cluster.executions()]
        assert not started, f"cancelled while queued, yet executed: {started}"
    expected = {j: "cancelled" if j in targets else "succeeded" for j in ids}
    check_recovery(checks, cluster, ids, window, expected=expected, tag="cancel")
    checks.verify()


def wait_cancelled(cluster: Cluster, job_ids: list[str], deadline: float) -> dict[str, float]:
    """When each job was first seen cancelled with a cancelled result (fails at ``deadline``)."""
    seen: dict[str, float] = {}
    while len(seen) < len(job_ids):
        for job_id, (job, results) in cluster.final_state(job_ids).items():
            done = job is not None and job.get("status") == "cancelled"
            if done and [r.get("status") for r in results] == ["cancelled"]:
                seen.setdefault(job_id, time.monotonic())
        missing = {j: _state(cluster, j) for j in job_ids if j not in seen}
        assert not missing or time.monotonic() < deadline, f"not cancelled in time: {missing}"
        time.sleep(0.1)
    return seen


def check_stopped(cluster: Cluster, seen: dict[str, float]) -> None:
    """No execution of a cancelled job wrote a line after its cancellation was seen."""
    runs = cluster.executions()
    late = {
        j: round(max(e.times[-1] for e in runs[j]) - t, 2)
        for j, t in seen.items()
        if j in runs and max(e.times[-1] for e in runs[j]) > t + TICK_S
    }
    assert not late, f"still executing after the cancelled result (s after it): {late}"


def _state(cluster: Cluster, job_id: str) -> dict[str, Any]:
    job, results = cluster.final_state([job_id])[job_id]
    return {
        "status": (job or {}).get("status"),
        "results": [(r.get("status"), (r.get("error") or {}).get("type")) for r in results],
    }


def test_reruns_asked_during_an_outage_run_when_mongodb_returns(make_cluster) -> None:
    """Twelve finished jobs are set back to ``queued`` during a 5 s refusal: when MongoDB
    returns each runs again as run 2, and its one result is the new run's, with run 1 in its
    history and nothing left over from the old result."""
    cluster: Cluster = make_cluster()
    ids = cluster.submit(mixed_jobs("rerun", 12, (0.1, 1.0)))
    cluster.wait_final(ids, FINAL_BOUND_S)
    first = {j: results[0] for j, (_, results) in cluster.final_state(ids).items()}
    with fault_window() as window:
        cluster.proxy.refuse()
        for job_id in ids:
            cluster.db.jobs.update_one({"job_id": job_id}, {"$set": {"status": "queued"}})
        time.sleep(5)  # the outage's length is the scenario
    cluster.proxy.forward()
    checks = Checks(cluster, "rerun-outage")
    with checks.check("every re-run produced a new result within 30 s"):
        wait_until(
            lambda: all(_rerun_done(cluster, j, first[j]) for j in ids),
            window["end"] - time.monotonic() + RERUN_BOUND_S,
            "a new result for every re-run",
        )
    with checks.check("each re-run's result is run 2, clean, with run 1 in its history"):
        problems = [p for j in ids for p in _rerun_problems(cluster, j, first[j], run=2)]
        assert not problems, "\n".join(problems)
    check_recovery(checks, cluster, ids, window, tag="rerun")
    checks.verify()


def test_five_reruns_in_a_row_survive_a_reactor_kill(make_cluster) -> None:
    """One job re-run five times in a row, a reactor SIGKILLed during the third re-run: six
    results in turn, runs 1 to 6, every one succeeded (a fresh attempt budget each run)."""
    cluster: Cluster = make_cluster()
    job = JobSpec("rerun-five", "loop_job", 1.0)
    ids = cluster.submit([job])
    cluster.wait_final(ids, FINAL_BOUND_S)
    checks = Checks(cluster, "rerun-five")
    previous = cluster.final_state(ids)[job.job_id][1][0]
    problems: list[str] = []
    with fault_window() as window, checks.check("five re-runs, each a new succeeded run"):
        for run in range(2, 7):
            cluster.db.jobs.update_one({"job_id": job.job_id}, {"$set": {"status": "queued"}})
            try:
                if run == 4:
                    _kill_runner(cluster, job.job_id, previous)
                wait_until(
                    lambda before=previous: _rerun_done(cluster, job.job_id, before),
                    RERUN_BOUND_S,
                    f"run {run} of {job.job_id}",
                )
            except AssertionError as exc:
                problems.append(f"run {run}: {exc}")
                break
            problems += _rerun_problems(cluster, job.job_id, previous, run=run)
            previous = cluster.final_state(ids)[job.job_id][1][0]
        assert not problems, "\n".join(problems)
    alive = [r for r in cluster.reactors if r.alive]
    check_recovery(checks, cluster, ids, window, faulted=[], alive=alive, tag="five")
    checks.verify()


def _kill_runner(cluster: Cluster, job_id: str, before: dict[str, Any]) -> None:
    """SIGKILL the reactor running the job's newest execution once it has started (nothing
    to kill if the job ends first without executing, as a job refused with GaveUp does)."""
    count = len(cluster.executions().get(job_id, []))
    wait_until(
        lambda: (
            len(cluster.executions().get(job_id, [])) > count
            or _rerun_done(cluster, job_id, before)
        ),
        RERUN_BOUND_S,
        "the re-run to start",
    )
    if len(cluster.executions().get(job_id, [])) == count:
        return
    newest = cluster.executions()[job_id][-1]
    victim = next(r for r in cluster.reactors if r.pid == newest.host_pid)
    victim.send(signal.SIGKILL)
    victim.wait_exit(30)


def _rerun_done(cluster: Cluster, job_id: str, before: dict[str, Any]) -> bool:
    job, results = cluster.final_state([job_id])[job_id]
    if job is None or job.get("status") not in {"succeeded", "failed", "cancelled"}:
        return False
    return any(r.get("finished_at") != before.get("finished_at") for r in results)


def _rerun_problems(cluster: Cluster, job_id: str, before: dict[str, Any], run: int) -> list[str]:
    job, results = cluster.final_state([job_id])[job_id]
    if len(results) != 1:
        return [f"{job_id}: {len(results)} results"]
    result = results[0]
    problems = []
    if result.get("status") != "succeeded":
        error = result.get("error") or {}
        problems.append(f"{job_id} run {run}: {result.get('status')} {error.get('type')}: "
                        f"{str(error.get('message'))[:150]}")  # fmt: skip
    if result.get("run") != run or (job or {}).get("run") != run:
        problems.append(f"{job_id}: result run {result.get('run')}, job run "
                        f"{(job or {}).get('run')}, expected {run}")  # fmt: skip
    if result.get("status") == "succeeded" and "error" in result:
        problems.append(f"{job_id}: a succeeded result still carries an error")
    token = (result.get("result") or {}).get("token")
    if token is not None and token == (before.get("result") or {}).get("token"):
        problems.append(f"{job_id}: the result is the previous run's")
    history = result.get("history") or []
    if not history or history[-1].get("run") != run - 1:
        problems.append(f"{job_id}: history {history} does not end with run {run - 1}")
    return problems
