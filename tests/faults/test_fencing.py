"""No job runs twice at once, whatever clients and clocks do (issue 18). Three reactors each.

- a replica whose clock is 60 s ahead, or the owner's 60 s behind (libfaketime);
- clients replacing, deleting and re-inserting, and re-queueing running jobs;
- hard errors on result writes: every final job still has exactly one result;
- handlers that overstep: a loop handler blocking past its timeout, a process handler leaving a
  child process behind.
"""

from __future__ import annotations

import glob
import itertools
import json
import time
from typing import Any

import pytest

from tests.faults.fault_checks import (
    FINAL_BOUND_S,
    Checks,
    check_no_overlap,
    check_one_outcome_each,
)
from tests.faults.fault_harness import Cluster, JobSpec, mixed_jobs
from tests.faults.fault_processes import process_alive, wait_until
from tests.faults.fault_records import TICK_S

pytestmark = [pytest.mark.faults, pytest.mark.timeout(300)]

LIBFAKETIME = "/usr/lib/*/faketime/libfaketime.so.1"
STOP_BOUND_S = 1.0  # a taken-away execution stops within this


def skewed(offset_s: int) -> dict[str, str]:
    """The environment of a reactor whose clocks are ``offset_s`` off (libfaketime skews its
    monotonic clock too, or ``sleep`` fails; the execution records read the kernel's clock
    directly, so they still compare across processes)."""
    found = sorted(glob.glob(LIBFAKETIME))
    if not found:
        pytest.skip("libfaketime is not installed (apt-get install faketime; `make faults` does)")
    return {
        "LD_PRELOAD": found[0],
        "FAKETIME": f"{offset_s:+d}s",
        "FAKETIME_NO_CACHE": "1",
    }


def logged(cluster: Cluster, name: str, event: str) -> list[dict[str, Any]]:
    lines = []
    for raw in (cluster.root / f"{name}.log").read_text(errors="replace").splitlines():
        if raw.startswith("{") and f'"{event}"' in raw:
            entry = json.loads(raw)
            if entry.get("event") == event:
                lines.append(entry)
    return lines


@pytest.mark.parametrize("offset_s", [60, -60], ids=["replica-60s-ahead", "replica-60s-behind"])
def test_a_skewed_clock_never_runs_a_job_twice_at_once(make_cluster, offset_s: int) -> None:
    """One reactor's clock is 60 s ahead (it would take over every lease the moment another
    reactor writes it) or 60 s behind (its own leases would be born expired): leases are judged by
    MongoDB's clock, so 45 jobs of every kind end once each, never running twice at once, and the
    skewed reactor logs the skew it measured."""
    cluster: Cluster = make_cluster(extra_env={"r1": skewed(offset_s)})
    ids = cluster.submit(mixed_jobs(f"skew{offset_s:+d}", 45, (0.5, 2.0, 5.0)))
    checks = Checks(cluster, f"skew{offset_s:+d}")
    with checks.check("jobs final"):
        cluster.wait_final(ids, FINAL_BOUND_S)
    with checks.check("one final status and one result per job"):
        check_one_outcome_each(cluster, ids)
    with checks.check("no attempt on two processes at once"):
        check_no_overlap(cluster)
    with checks.check("each claim executed once (no reclaim of a live lease)"):
        runs = cluster.executions()
        again = {j: len(runs.get(j, [])) for j in ids if len(runs.get(j, [])) != 1}
        assert not again, f"jobs run more than once: {again}"
    with checks.check("the skewed reactor measured its skew"):
        skews = [entry["skew_s"] for entry in logged(cluster, "r1", "clock_skew")]
        assert skews, "r1 logged no clock_skew"
        assert abs(skews[-1] + offset_s) < 2, f"r1 measured {skews[-1]} s, its clock is {offset_s}"
        checks.measured["skew_s"] = skews[-1]
    checks.verify()


def _victim(job_id: str, command: str, seconds: float) -> dict[str, Any]:
    return {"job_id": job_id, "command": command, "args": {"seconds": seconds}}


def test_client_writes_take_running_jobs_away_cleanly(make_cluster) -> None:
    """Running loop, thread and process jobs are replaced, deleted and inserted again, or set
    back to queued by a client: a replaced or re-inserted job records its new document's result,
    its old loop or process execution stopping within a second; a re-queued job runs again, never
    beside its earlier execution; every job ends with one result."""
    cluster: Cluster = make_cluster()
    kinds = {"loop": "loop_job", "thread": "thread_job", "process": "cpu_job"}
    victims = {
        f"{how}-{kind}": (how, command)
        for how in ("replace", "reinsert", "requeue")
        for kind, command in kinds.items()
    }
    cluster.db.jobs.insert_many([_victim(j, c, 6.0) for j, (_, c) in victims.items()])
    cluster.submitted.update({j: JobSpec(j, c, 6.0) for j, (_, c) in victims.items()})
    cluster.wait_started(list(victims), len(victims))
    written: dict[str, float] = {}
    for job_id, (how, command) in victims.items():
        new = _victim(job_id, command, 0.5)
        if how == "replace":
            cluster.db.jobs.replace_one({"job_id": job_id}, new)
        elif how == "reinsert":
            cluster.db.jobs.delete_one({"job_id": job_id})
            cluster.db.jobs.insert_one(new)
        else:
            cluster.db.jobs.update_one({"job_id": job_id}, {"$set": {"status": "queued"}})
        written[job_id] = time.monotonic()
    checks = Checks(cluster, "client-writes")
    with checks.check("jobs final"):
        cluster.wait_final(list(victims), FINAL_BOUND_S)
    with checks.check("one final status and one result per job, the newest execution's"):
        check_one_outcome_each(cluster, list(victims))
        _check_newest_result(cluster, victims, written)
    with checks.check("taken-away loop and process executions stopped within a second"):
        _check_stopped(cluster, victims, written)
    with checks.check("a re-queued job never ran twice at once"):
        requeued = {j for j, (how, _) in victims.items() if how == "requeue"}
        check_no_overlap_of(cluster, requeued)
    checks.verify()


def _check_newest_result(
    cluster: Cluster, victims: dict[str, tuple[str, str]], written: dict[str, float]
) -> None:
    """A replaced or re-inserted job's result comes from an execution started after the write."""
    runs = cluster.executions()
    state = cluster.final_state(list(victims))
    for job_id, (how, _) in victims.items():
        if how == "requeue":
            continue
        token = state[job_id][1][0]["result"]["token"]
        execution = next(e for e in runs[job_id] if e.token == token)
        assert execution.start > written[job_id], f"{job_id}: the old execution's result was kept"


def _check_stopped(
    cluster: Cluster, victims: dict[str, tuple[str, str]], written: dict[str, float]
) -> None:
    """The executions that started before the write stopped writing within a second of it (a
    thread cannot be stopped: replaced or deleted, it is abandoned; re-queued, it is awaited)."""
    runs = cluster.executions()
    late = {}
    for job_id, (how, command) in victims.items():
        if command == "thread_job" or how == "requeue":
            continue
        for execution in runs[job_id]:
            if execution.start < written[job_id]:
                after = execution.last() - written[job_id]
                if after > STOP_BOUND_S + TICK_S:
                    late[job_id] = round(after, 2)
    assert not late, f"still executing after being taken away (s): {late}"


def check_no_overlap_of(cluster: Cluster, job_ids: set[str]) -> None:
    runs = cluster.executions()
    for job_id in job_ids:
        spans = sorted((e.start, e.last()) for e in runs[job_id])
        for (_, end), (start, _) in itertools.pairwise(spans):
            assert start >= end, f"{job_id}: executions overlapped: {spans}"


def test_hard_errors_on_result_writes_leave_one_result_per_job(make_cluster) -> None:
    """MongoDB refuses a result write (the ``$merge`` from the job into ``results``: an
    aggregate on ``jobs``) with a hard error (121, a validator's refusal) eight times,
    one after another, while 60 jobs run: every final job still has exactly one result document;
    the refused ones say ResultRefused, the others succeeded. The one documented exception: when
    the next refusal meets the same job's minimal result, its job document alone carries the
    outcome (logged ``result_refused`` with ``recorded_as: job_only``)."""
    cluster: Cluster = make_cluster()
    ids = cluster.submit(mixed_jobs("refused", 60, (0.1, 0.5, 1.0)))
    for _ in range(8):
        cluster.double.hook(
            "fail_next", n=1, code=121, commands=["aggregate"], collections=["jobs"],
            stages=["$merge"],
            message="Document failed validation",
        )  # fmt: skip
        wait_until(lambda: cluster.double.pending_failures() == 0, 30, "the refusal taken")
    checks = Checks(cluster, "refused-results")

    def job_only() -> set[str]:
        lines = [ln for r in cluster.reactors for ln in logged(cluster, r.name, "result_refused")]
        return {line["job_id"] for line in lines if line.get("recorded_as") == "job_only"}

    with checks.check("jobs final"):
        cluster.wait_final(ids, FINAL_BOUND_S, without_result=job_only)
    state, job_only_ids = cluster.final_state(ids), job_only()
    checks.measured["job_only"] = len(job_only_ids)
    with checks.check("exactly one result per final job (none where the job alone has it)"):
        counts = {j: len(results) for j, (_, results) in state.items()
                  if len(results) != (0 if j in job_only_ids else 1)}  # fmt: skip
        assert not counts, f"jobs without exactly one result: {counts}"
    with checks.check("refusals are recorded as ResultRefused, the rest succeeded"):
        kinds = {}
        for job_id, (job, results) in state.items():
            assert job is not None, job_id
            final = results[0] if results else job
            error = (final.get("error") or {}).get("type")
            kinds[job_id] = "refused" if error == "ResultRefused" else final["status"]
            assert job["status"] == final["status"], job_id
        refused = sum(1 for kind in kinds.values() if kind == "refused")
        checks.measured["refused"] = refused
        assert refused > 0, "no result write was refused; nothing was proven"
        assert set(kinds.values()) <= {"refused", "succeeded"}, kinds
    checks.verify()


def test_handlers_that_overstep_are_bounded(make_cluster) -> None:
    """A loop handler that blocks the event loop past its 1 s timeout ends JobTimeout, naming the
    blocking; a process handler that leaves a child running gets it killed when the job ends,
    logged as job_left_processes. Leases of 10 s: a handler that blocks its reactor's loop for
    3 s also stops that reactor's renewals, and with the suite's 3 s leases another reactor may
    reclaim it first (seen under load: the blocking reclaimed twice and judged poison)."""
    cluster: Cluster = make_cluster(lease_s=10)
    blocking = cluster.submit([JobSpec(f"block-{i}", "blocking_loop_job", 3.0) for i in range(3)])
    leaving = cluster.submit([JobSpec(f"leave-{i}", "child_leaving_job", 0.0) for i in range(3)])
    checks = Checks(cluster, "overstep")
    with checks.check("jobs final"):
        cluster.wait_final(blocking + leaving, FINAL_BOUND_S)
    state = cluster.final_state(blocking + leaving)
    with checks.check("a blocking loop handler ends JobTimeout, naming the blocking"):
        for job_id in blocking:
            error = state[job_id][1][0]["error"]
            assert error["type"] == "JobTimeout", (job_id, error)
            assert "blocked the event loop" in error["message"], (job_id, error)
    with checks.check("a child a process job left behind dies with its job"):
        children = [state[j][1][0]["result"]["child"] for j in leaving]
        wait_until(lambda: not any(process_alive(pid) for pid in children), 5, "children gone")
        left = sum(
            entry.get("count", 0)
            for reactor in cluster.reactors
            for entry in logged(cluster, reactor.name, "job_left_processes")
        )
        assert left == len(leaving), f"job_left_processes counted {left} of {len(leaving)}"
    checks.verify()
