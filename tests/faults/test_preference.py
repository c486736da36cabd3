"""One wake-up per job across replicas (``reactor/rendezvous.py``), when the preferred replica
cannot claim: frozen (SIGSTOP, still in the fleet) or killed (SIGKILL, still in the fleet until
its entry's TTL). Its share of new jobs is claimed by the others within the grace, long before
the fleet forgets it, and nothing runs twice."""

from __future__ import annotations

import signal
import time
from datetime import UTC, datetime
from typing import Any

import pytest

from reactor.rendezvous import Preference
from tests.faults.fault_checks import Checks, check_no_overlap, check_one_outcome_each, fault_window
from tests.faults.fault_harness import Cluster, JobSpec
from tests.faults.fault_processes import wait_until

pytestmark = [pytest.mark.faults, pytest.mark.timeout(300)]

GRACE_S = 0.5
HEARTBEAT_S = 1.0
FLEET_TTL_S = 120.0  # far past the scenario: the victim stays in every reactor's fleet
FINAL_BOUND_S = 45.0  # under load; a preference waiting on the TTL would take 120 s
JOBS = 30


def settle_fleet(cluster: Cluster) -> list[str]:
    """Until every reactor has beaten twice after the last one joined (each knows all the
    others); returns the owners."""
    n = len(cluster.reactors)
    joined = wait_until(lambda: cluster.db.reactor_workers.count_documents({}) == n or None,
                        60, "every reactor in reactor_workers")  # fmt: skip
    assert joined
    time.sleep(2.5 * HEARTBEAT_S)
    return [str(doc["_id"]) for doc in cluster.db.reactor_workers.find({}, {"_id": 1})]


def victim_owner(cluster: Cluster, pid: int) -> str:
    doc = cluster.db.reactor_workers.find_one({"pid": pid}, {"_id": 1})
    assert doc is not None, f"no fleet entry for pid {pid}"
    return str(doc["_id"])


def preferred_by(owner: str, owners: list[str], doc_ids: list[Any]) -> set[Any]:
    """The jobs ``owner`` is the preferred reactor of, computed as every reactor does."""
    preference = Preference(owner)
    preference.update(owners)
    return {doc_id for doc_id in doc_ids if preference.mine(doc_id)}


def last_claim_after_s(cluster: Cluster, ids: list[str], submitted: datetime) -> float:
    """From just before the insert to the last of these jobs' claims (one machine's clock)."""
    claims = [d["started_at"] for d in cluster.db.jobs.find({"job_id": {"$in": ids}})]
    return (max(claims) - submitted).total_seconds()


@pytest.mark.parametrize("fault", ["sigstop", "sigkill"])
def test_a_preferred_reactor_that_cannot_claim_leaves_its_share_to_the_others(
    make_cluster: Any, fault: str
) -> None:
    """Three reactors know each other; one is frozen or killed while still in the fleet. Of 30
    new jobs the others ring at once only for their own share; the rest are rung for after the
    grace (the last claim comes after it), and every job ends once, on the others, long before
    the victim's fleet entry expires."""
    cluster: Cluster = make_cluster(
        claim_grace_s=GRACE_S, fleet_heartbeat_s=HEARTBEAT_S, fleet_ttl_s=FLEET_TTL_S
    )
    owners = settle_fleet(cluster)
    victim = cluster.reactors[0]
    survivors = cluster.reactors[1:]
    owner = victim_owner(cluster, victim.pid)
    checks = Checks(cluster, f"preference-{fault}")
    with fault_window():
        victim.send(signal.SIGSTOP if fault == "sigstop" else signal.SIGKILL)
        if fault == "sigkill":
            victim.wait_exit(30)
        specs = [JobSpec(f"pref-{fault}-{i}", "loop_job", 0.1) for i in range(JOBS)]
        submitted = datetime.now(UTC)
        ids = cluster.submit(specs)
        began = time.monotonic()
        with checks.check(f"every job final within {FINAL_BOUND_S:g} s (the TTL is 120 s)"):
            cluster.wait_final(ids, FINAL_BOUND_S)
            checks.measured["final_after_s"] = round(time.monotonic() - began, 2)
    docs = {d["job_id"]: d["_id"] for d in cluster.db.jobs.find({"job_id": {"$in": ids}})}
    theirs = preferred_by(owner, owners, list(docs.values()))
    checks.measured["victims_share"] = len(theirs)
    with checks.check("the victim's share was claimed by the others, after the grace"):
        assert theirs, f"the victim was preferred for none of {JOBS} jobs: nothing was tested"
        last = checks.measured["last_claim_s"] = round(
            last_claim_after_s(cluster, ids, submitted), 3
        )
        assert last >= GRACE_S, f"every job claimed {last} s after the insert, before the grace"
        holders = {e.host_pid for j in ids for e in cluster.executions().get(j, [])}
        assert holders <= {r.pid for r in survivors}, f"ran on {holders}"
    with checks.check("one final status and one result per job"):
        check_one_outcome_each(cluster, ids)
    with checks.check("no attempt on two processes at once"):
        check_no_overlap(cluster, [])
    if fault == "sigstop":
        victim.send(signal.SIGCONT)
    checks.verify()
