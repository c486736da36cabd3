"""MongoDB unreachable through the proxy: refused, blackholed, reset. Three reactors each.

Every scenario (``fault_checks.run_outage``) fills most of the 48 job slots: one long job of
each kind per reactor (9, running 8 s past the outage) and a burst of 36 loop jobs that all
end at one instant 3 s into the outage, with 12 mixed jobs (0.1 to 4 s) queued behind; it cuts
the link while they run, heals it, and checks ``fault_checks.check_recovery``.
"""

from __future__ import annotations

import time

import pytest

from tests.faults.fault_checks import Checks, check_single_execution, ended_between, run_outage
from tests.faults.fault_harness import Cluster, JobSpec

pytestmark = [pytest.mark.faults, pytest.mark.timeout(420)]


def test_refused_for_5s_inside_the_lease_reruns_nothing(make_cluster) -> None:
    """Connections refused for 5 s, leases of 15 s: the reactors recover, and no handler runs
    twice, not even those that finished while MongoDB was away (their outcome is kept). Server
    selection gives up after 2 s, so the outage outlasts every single driver call."""
    cluster: Cluster = make_cluster(lease_s=15, connect_timeout_s=2)
    proxy = cluster.proxy
    checks, ids, window = run_outage(cluster, "refuse5", proxy.refuse, proxy.forward, 5)
    finished_during = ended_between(cluster, ids, window["start"], window["end"])
    checks.measured["finished_during_outage"] = finished_during
    with checks.check("the scenario had handlers finish during the outage"):
        assert finished_during > 0, "no handler finished during the outage; nothing was proven"
    with checks.check("no finished handler ran a second time"):
        check_single_execution(cluster, ids)
    checks.verify()


def test_refused_for_25s_then_forward(make_cluster) -> None:
    """Connections refused for 25 s, far past the 3 s leases: the reactors recover unrestarted."""
    cluster: Cluster = make_cluster()
    proxy = cluster.proxy
    checks, _, _ = run_outage(cluster, "refuse25", proxy.refuse, proxy.forward, 25)
    checks.verify()


def test_blackhole_for_15s_then_forward(make_cluster) -> None:
    """A 15 s blackhole (accepted, nothing moves, sockets held), then the link heals."""
    cluster: Cluster = make_cluster()
    proxy = cluster.proxy
    checks, _, _ = run_outage(cluster, "hole15", proxy.blackhole, proxy.forward, 15)
    checks.verify()


RESET_BOUND_S = 5.0  # after a reset, every reactor is ready and claiming within this


def test_blackhole_for_15s_then_reset(make_cluster) -> None:
    """A 15 s blackhole ended by an RST on every held connection, then new ones work: within 5 s
    of the reset every reactor answers /readyz 200 and has claimed a fresh job."""
    cluster: Cluster = make_cluster(connect_timeout_s=10)
    proxy = cluster.proxy

    def claiming(checks: Checks) -> None:
        healed = time.monotonic()
        probes = cluster.submit(
            [JobSpec(f"holerst-claim-{i}", "probe", 8.0) for i in range(len(cluster.reactors))]
        )
        with checks.check("every reactor claimed a job within 5 s of the reset"):
            took = wait_each_claimed(cluster, probes, healed, RESET_BOUND_S)
            checks.measured["claiming_after_s"] = round(max(took.values()), 2)

    checks, _, _ = run_outage(cluster, "holerst", proxy.blackhole, proxy.reset, 15,
                              ready_bound_s=RESET_BOUND_S, on_heal=claiming)  # fmt: skip
    checks.verify()


def wait_each_claimed(
    cluster: Cluster, probes: list[str], since: float, bound_s: float
) -> dict[str, float]:
    """Each reactor started one of ``probes`` (one at a time per reactor, 8 s each, so no reactor
    can take two in time) within ``bound_s`` of ``since``; how long each took."""
    deadline = since + bound_s
    took: dict[str, float] = {}
    names = {r.pid: r.name for r in cluster.reactors}
    while time.monotonic() < deadline + 1 and len(took) < len(names):
        for runs in cluster.executions().values():
            for run in runs:
                name = names.get(run.host_pid)
                if run.job_id in probes and name is not None:
                    took.setdefault(name, run.start - since)
        time.sleep(0.1)
    late = {n: round(t, 2) for n, t in took.items() if t > bound_s}
    idle = sorted(set(names.values()) - set(took))
    assert not idle, f"claimed nothing within {bound_s:g} s: {idle} (late: {late})"
    assert not late, f"claimed late (s): {late}"
    return took
