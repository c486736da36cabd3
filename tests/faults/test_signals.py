"""Reactor processes killed, frozen and stopped, and their pool workers orphaned. Three each."""

from __future__ import annotations

import signal
import time

import pytest

from tests.faults.fault_checks import Checks, check_recovery, fault_window
from tests.faults.fault_harness import Cluster, JobSpec, long_jobs, mixed_jobs
from tests.faults.fault_processes import ReactorProcess, command_line, process_alive, wait_until
from tests.faults.fault_records import Execution, Grace

pytestmark = [pytest.mark.faults, pytest.mark.timeout(420)]

GONE_BOUND_S = 1.0  # a SIGKILLed reactor's workers and their children are gone by then
RESUME_GRACE_S = 2.0  # what a frozen reactor's own handlers may run on after SIGCONT
EXIT_SLACK_S = 5.0  # SIGTERM: the process ends within REACTOR_DRAIN_S plus this
LONG_S = (2.0, 4.0, 6.0)  # jobs long enough that the victim holds some when it is hit


def wait_holding(cluster: Cluster, ids: list[str], remaining_s: float) -> ReactorProcess:
    """The first reactor seen running, at once, a CPU-pool job and an in-process job of these
    that each have at least ``remaining_s`` to go (so the fault hits them, not their end)."""

    def left(e: Execution) -> float:
        return e.start + cluster.submitted[e.job_id].seconds - time.monotonic()

    def holder() -> ReactorProcess | None:
        runs = [e for j in ids for e in cluster.executions().get(j, []) if not e.ended]
        for reactor in cluster.reactors:
            mine = [e for e in runs if e.host_pid == reactor.pid and left(e) >= remaining_s]
            kinds = {e.kind == "process" for e in mine}
            if kinds == {True, False}:
                return reactor
        return None

    found: ReactorProcess = wait_until(holder, 90, "a reactor holding long jobs of both kinds")
    return found


def check_gone(pids: list[int], since: float) -> None:
    """Every pid is dead (or a zombie) by ``since`` + :data:`GONE_BOUND_S`."""
    deadline = since + GONE_BOUND_S
    while (alive := [p for p in pids if process_alive(p)]) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not alive, f"still running {GONE_BOUND_S:g} s after their reactor died: " + "; ".join(
        f"{p} {command_line(p)}" for p in alive
    )


def test_sigkill_of_a_reactor(make_cluster) -> None:
    """SIGKILL a reactor holding jobs of every kind: its workers are gone within 1 s, the other
    two re-run its jobs after the lease, and nothing runs twice at once."""
    cluster: Cluster = make_cluster(cpu_workers=2)  # room on the others to re-run CPU jobs
    ids = cluster.submit(long_jobs("kill", 3, 10.0) + mixed_jobs("kill", 24, LONG_S))
    victim = wait_holding(cluster, ids, 7.0)
    survivors = [r for r in cluster.reactors if r is not victim]
    doomed = victim.remember_descendants()
    with fault_window() as window:
        victim.send(signal.SIGKILL)
        victim.wait_exit(30)
    checks = Checks(cluster, "sigkill")
    with checks.check("the killed reactor's processes are gone within 1 s"):
        check_gone(doomed, window["end"])
    check_recovery(checks, cluster, ids, window, faulted=[], alive=survivors, tag="kill")
    checks.verify()


def test_sigstop_past_the_lease_then_sigcont(make_cluster) -> None:
    """SIGSTOP a reactor for 8 s (leases are 3 s), then SIGCONT: the others re-run its jobs; it
    must stop its own within 2 s of resuming, its CPU workers (not frozen) at once, and then
    serve again, not ready while frozen, ready after. Loop and CPU jobs only: a thread handler
    frozen past its lease cannot be stopped after SIGCONT except by the process exiting, which
    "alive with no restart" rules out, so no core could pass this scenario with thread jobs."""
    cluster: Cluster = make_cluster(cpu_workers=2)  # room on the others to re-run CPU jobs
    kinds = ("loop", "process")  # handlers a reactor can stop (see the docstring)
    ids = cluster.submit(long_jobs("stop", 3, 12.0, kinds) + mixed_jobs("stop", 24, LONG_S, kinds))
    victim = wait_holding(cluster, ids, 9.0)
    with fault_window() as window:
        victim.send(signal.SIGSTOP)
        time.sleep(8)  # how long it is frozen is the scenario
    victim.send(signal.SIGCONT)
    grace = Grace(victim.pid, window["end"], window["end"] + RESUME_GRACE_S)
    checks = Checks(cluster, "sigstop")
    check_recovery(checks, cluster, ids, window, faulted=[victim.name], graces=[grace], tag="stop")
    checks.verify()


def test_sigterm_drains_then_hands_back(make_cluster) -> None:
    """SIGTERM a reactor running 15 s jobs with REACTOR_DRAIN_S=2: /readyz says 503 "draining"
    at once, the process exits 0 within the drain bound plus 5 s, and the others finish the
    jobs it handed back without running any of them twice at once."""
    cluster: Cluster = make_cluster()
    ids = cluster.submit(long_jobs("term", 3, 15.0) + mixed_jobs("term", 24, LONG_S))
    victim = wait_holding(cluster, ids, 10.0)
    survivors = [r for r in cluster.reactors if r is not victim]
    drain_s = float(cluster.settings["drain_s"])
    with fault_window() as window:
        victim.send(signal.SIGTERM)
        status, body = victim.readyz()
        code = victim.wait_exit(drain_s + EXIT_SLACK_S)
    checks = Checks(cluster, "sigterm")
    checks.measured["exit_after_s"] = round(window["end"] - window["start"], 2)
    with checks.check("/readyz answers 503 draining right after SIGTERM"):
        reasons = " ".join(body.get("reasons", []))
        assert status == 503, f"/readyz answered {status} {body} right after SIGTERM"
        assert "drain" in reasons, f"503 without the reason 'draining': {body}"
    with checks.check(f"exits 0 within REACTOR_DRAIN_S + {EXIT_SLACK_S:g} s"):
        assert code == 0, f"exit code {code} after {window['end'] - window['start']:.1f} s"
    check_recovery(checks, cluster, ids, window, faulted=[victim.name], alive=survivors, tag="term")
    checks.verify()


def test_sigterm_during_an_outage_still_stops(make_cluster) -> None:
    """SIGTERM a reactor while a blackhole holds every MongoDB connection: it still ends within
    REACTOR_DRAIN_S plus 5 s; after the outage the others finish every job."""
    cluster: Cluster = make_cluster()
    ids = cluster.submit(long_jobs("termout", 3, 15.0) + mixed_jobs("termout", 24, LONG_S))
    victim = wait_holding(cluster, ids, 10.0)
    survivors = [r for r in cluster.reactors if r is not victim]
    drain_s = float(cluster.settings["drain_s"])
    checks = Checks(cluster, "sigterm-outage")
    with fault_window() as window:
        cluster.proxy.blackhole()
        time.sleep(3)  # the outage is under way before the signal
        sent = time.monotonic()
        victim.send(signal.SIGTERM)
        code = victim.wait_exit(drain_s + EXIT_SLACK_S)
        checks.measured["exit_after_s"] = round(time.monotonic() - sent, 2)
    cluster.proxy.forward()
    with checks.check(f"ends within REACTOR_DRAIN_S + {EXIT_SLACK_S:g} s during the outage"):
        assert code is not None, f"still running {drain_s + EXIT_SLACK_S:g} s after SIGTERM"
    check_recovery(checks, cluster, ids, window, alive=survivors, tag="termout")
    checks.verify()


def test_orphaned_pool_worker_dies_with_its_reactor(make_cluster) -> None:
    """SIGKILL the reactor whose pool worker burns CPU in a 20 s job that started a child
    process: worker and child are gone within 1 s, and the job's re-run on another reactor
    never overlaps the old execution."""
    cluster: Cluster = make_cluster()
    burn = JobSpec("orphan-burn", "cpu_burn_job", 20.0, {"child": True})
    ids = cluster.submit([burn, *mixed_jobs("orphan", 23, LONG_S)])

    def burning() -> object:
        runs = cluster.executions().get(burn.job_id, [])
        return runs[0] if runs and runs[0].children else None

    execution = wait_until(burning, 60, "the CPU job to start its child")
    victim = next(r for r in cluster.reactors if r.pid == execution.ppid)
    doomed = victim.remember_descendants()
    checks = Checks(cluster, "orphans")
    with checks.check("the worker and its child are the victim's descendants"):
        assert {execution.pid, *execution.children} <= set(doomed), (execution, doomed)
    with fault_window() as window:
        victim.send(signal.SIGKILL)
        victim.wait_exit(30)
    with checks.check("the worker and its child are gone within 1 s"):
        check_gone(doomed, window["end"])
    survivors = [r for r in cluster.reactors if r is not victim]
    check_recovery(checks, cluster, ids, window, faulted=[], alive=survivors, tag="orphan")
    checks.verify()
