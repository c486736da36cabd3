"""The assertions every fault scenario makes, and the generic outage scenario.

Bounds (measured from the end of the fault, generous so that they hold with the other core busy):
readiness 200 within :data:`READY_BOUND_S`; every job of the scenario final within
:data:`FINAL_BOUND_S`; fresh probe jobs done within :data:`PROBE_BOUND_S`.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from collections.abc import Callable, Iterable, Iterator

from tests.faults.fault_harness import Cluster, JobSpec, long_jobs, mixed_jobs
from tests.faults.fault_processes import ReactorProcess, wait_until
from tests.faults.fault_records import Grace, overlaps

READY_BOUND_S = 30.0
FINAL_BOUND_S = 60.0
PROBE_BOUND_S = 45.0
REPORT_ENV = "FAULT_REPORT"  # a file: each scenario appends one JSON line of measurements


class Checks:
    """Runs every check of a scenario and reports all that failed, with the reactors' logs."""

    def __init__(self, cluster: Cluster, scenario: str) -> None:
        self.cluster = cluster
        self.scenario = scenario
        self.failures: list[str] = []
        self.measured: dict[str, object] = {}

    @contextlib.contextmanager
    def check(self, what: str) -> Iterator[None]:
        try:
            yield
        except AssertionError as exc:
            self.failures.append(f"[{what}] {exc}")

    def verify(self) -> None:
        self._report()
        if self.failures:
            raise AssertionError(
                f"{len(self.failures)} check(s) failed:\n"
                + "\n".join(self.failures)
                + "\n"
                + self.cluster.evidence()
            )

    def _report(self) -> None:
        runs = self.cluster.executions()
        line = {
            "scenario": self.scenario,
            "python": sys.version.split()[0],
            "jobs": len(self.cluster.submitted),
            "executions": sum(len(r) for r in runs.values()),
            "failed_checks": [f.split("]")[0].strip("[") for f in self.failures],
            **self.measured,
        }
        print(json.dumps(line))
        path = os.environ.get(REPORT_ENV)
        if path:
            with open(path, "a") as out:
                out.write(json.dumps(line) + "\n")


@contextlib.contextmanager
def fault_window() -> Iterator[dict[str, float]]:
    """Times the fault: ``window["start"]`` on entry, ``window["end"]`` on exit."""
    window = {"start": time.monotonic()}
    try:
        yield window
    finally:
        window["end"] = time.monotonic()


def check_one_outcome_each(
    cluster: Cluster, job_ids: Iterable[str], expected: str | dict[str, str] = "succeeded"
) -> None:
    """Each job: a terminal status, exactly one result, the same status in both, the expected
    one; a succeeded result carries the token of an execution of that job that ended."""
    ids = list(job_ids)
    state = cluster.final_state(ids)
    runs = cluster.executions()
    problems = []
    for job_id in ids:
        job, results = state[job_id]
        want = expected if isinstance(expected, str) else expected[job_id]
        if job is None or len(results) != 1:
            problems.append(
                f"{job_id}: job {'missing' if job is None else 'present'}, {len(results)} results"
            )
            continue
        result = results[0]
        if not (job.get("status") == result.get("status") == want):
            error = (result.get("error") or {}).get("type")
            problems.append(
                f"{job_id}: job {job.get('status')}, result {result.get('status')} ({error}: "
                f"{(result.get('error') or {}).get('message', '')[:120]}), expected {want}"
            )
            continue
        if want == "succeeded":
            token = (result.get("result") or {}).get("token")
            ended = {e.token for e in runs.get(job_id, []) if e.ended}
            if token not in ended:
                problems.append(f"{job_id}: result token {token} is no ended execution of it")
    stray = cluster.db.results.count_documents({"job_id": {"$nin": list(cluster.submitted)}})
    if stray:
        problems.append(f"{stray} results for jobs never submitted")
    assert not problems, "\n".join(problems)


def check_no_overlap(cluster: Cluster, graces: Iterable[Grace] = ()) -> None:
    """No two executions of one job ran at once (the rule in fault_records.py)."""
    found = overlaps(cluster.executions(), graces)
    assert not found, "concurrent executions:\n" + "\n".join(o.describe() for o in found)


def check_not_ready_during(
    cluster: Cluster, names: Iterable[str], window: dict[str, float]
) -> None:
    """Each named reactor answered /readyz with something other than 200 during the fault."""
    for name in names:
        samples = cluster.readiness.of(name, window["start"], window["end"])
        assert any(s.status != 200 for s in samples), (
            f"{name} answered /readyz 200 throughout the fault "
            f"({len(samples)} samples: {sorted({s.status for s in samples}, key=str)})"
        )


def check_ready_after(
    cluster: Cluster, names: Iterable[str], since: float, bound_s: float
) -> dict[str, float]:
    """Each named reactor answered /readyz 200 within ``bound_s`` of ``since``; returns how
    long each took."""
    took = {}
    for name in names:
        with contextlib.suppress(AssertionError):  # judged below, on the sample's own time
            wait_until(
                lambda n=name: (
                    cluster.readiness.first_ready(n, since) or time.monotonic() > since + bound_s
                ),
                bound_s + 5,
                f"{name} /readyz",
            )
        first = cluster.readiness.first_ready(name, since)
        last = cluster.readiness.of(name, since, float("inf"))[-3:]
        assert first is not None, f"{name} never answered /readyz 200 after the fault: {last}"
        assert first.sent - since <= bound_s, (
            f"{name} answered /readyz 200 only {first.sent - since:.1f} s after the fault's end"
        )
        took[name] = round(first.done - since, 2)
    return took


def check_alive_and_processing(
    cluster: Cluster, reactors: list[ReactorProcess], bound_s: float, tag: str
) -> float:
    """The reactors still run (same process, never restarted), /healthz answers 200, and each
    runs a fresh probe job: 2 probes per reactor, at most one at a time per reactor, all done
    within ``bound_s``. Returns how long the probes took."""
    for r in reactors:
        assert r.alive, f"{r.name} exited ({r.proc.returncode if r.proc else None})"
        assert r.starts == 1, f"{r.name} was restarted"
        wait_until(lambda r=r: r.healthz() == 200, bound_s, f"{r.name} /healthz 200")
    began = time.monotonic()
    probes = [JobSpec(f"{tag}-probe-{i}", "probe", 2.0) for i in range(2 * len(reactors))]
    ids = cluster.submit(probes)
    cluster.wait_final(ids, bound_s)
    check_one_outcome_each(cluster, ids)
    hosts = {e.host_pid for j in ids for e in cluster.executions().get(j, []) if e.ended}
    idle = [r.name for r in reactors if r.pid not in hosts]
    assert not idle, f"{idle} ran no probe job after the fault"
    return time.monotonic() - began


def check_single_execution(cluster: Cluster, job_ids: Iterable[str]) -> None:
    """Each job's handler ran exactly once: no lease expired, so nothing may have run again."""
    runs = cluster.executions()
    again = {j: len(runs.get(j, [])) for j in job_ids if len(runs.get(j, [])) != 1}
    assert not again, f"jobs whose handler ran other than once (job: executions): {again}"


def ended_between(cluster: Cluster, job_ids: Iterable[str], start: float, end: float) -> int:
    """How many of these jobs' executions returned inside ``[start, end]``."""
    runs = cluster.executions()
    return sum(
        1 for j in job_ids for e in runs.get(j, []) if e.ended and start <= e.times[-1] <= end
    )


def check_recovery(
    checks: Checks,
    cluster: Cluster,
    job_ids: list[str],
    window: dict[str, float],
    *,
    faulted: Iterable[str] | None = None,
    alive: list[ReactorProcess] | None = None,
    graces: Iterable[Grace] = (),
    expected: str | dict[str, str] = "succeeded",
    tag: str,
    ready_bound_s: float = READY_BOUND_S,
) -> None:
    """The four promises after a fault: not ready during it (for ``faulted`` reactors, default
    all), ready after it (within ``ready_bound_s``), one final outcome per job, no overlap, and
    ``alive`` reactors (default all) alive and processing fresh probes."""
    names = [r.name for r in cluster.reactors] if faulted is None else list(faulted)
    alive = cluster.reactors if alive is None else alive
    with checks.check("readiness during the fault"):
        check_not_ready_during(cluster, names, window)
    with checks.check("jobs final after the fault"):
        cluster.wait_final(job_ids, FINAL_BOUND_S)
        checks.measured["final_after_s"] = round(time.monotonic() - window["end"], 2)
    with checks.check("one final status and one result per job"):
        check_one_outcome_each(cluster, job_ids, expected)
    with checks.check("no attempt on two processes at once"):
        check_no_overlap(cluster, graces)
    with checks.check("readiness after the fault"):
        took = check_ready_after(cluster, [r.name for r in alive], window["end"], ready_bound_s)
        checks.measured["ready_after_s"] = max(took.values(), default=0)
    with checks.check("alive and processing after the fault"):
        checks.measured["probes_s"] = round(
            check_alive_and_processing(cluster, alive, PROBE_BOUND_S, tag), 2
        )


LEAD_S = 8.0  # the burst ends this long after it is submitted...
INTO_FAULT_S = 3.0  # ...and, by default, this far into the fault
OUTLIVE_S = 8.0  # long jobs run this much past the end of the fault


def start_outage_jobs(
    cluster: Cluster, tag: str, fault_s: float, into_s: float = INTO_FAULT_S
) -> list[str]:
    """Submit the jobs of a fault and return when it is time to start it.

    One long job of each kind per reactor runs :data:`OUTLIVE_S` past the fault; a burst of
    loop jobs that all end at one instant, ``into_s`` into the fault, fills most other job
    slots; 12 mixed jobs queue behind. Returns once the long jobs and most of the burst run,
    at the planned start of the fault (a schedule, not a guess of speed)."""
    began = time.monotonic()
    cut_at = began + LEAD_S - into_s
    reactors = len(cluster.reactors)
    held = long_jobs(tag, reactors, LEAD_S - into_s + fault_s + OUTLIVE_S)
    room = int(cluster.settings["max_jobs"]) * reactors - len(held) - reactors  # some slack
    until = {"until": began + LEAD_S}
    burst = [JobSpec(f"{tag}-burst-{i}", "loop_job", LEAD_S, until) for i in range(room)]
    ids = cluster.submit(held + burst) + cluster.submit(mixed_jobs(tag, 12))
    cluster.wait_started([j.job_id for j in burst], len(burst) * 3 // 4)
    cluster.wait_started([j.job_id for j in held], len(held))
    time.sleep(max(0.0, cut_at - time.monotonic()))
    return ids


def run_outage(
    cluster: Cluster,
    tag: str,
    cut: Callable[[], None],
    heal: Callable[[], None],
    duration_s: float,
    *,
    ready_bound_s: float = READY_BOUND_S,
    on_heal: Callable[[Checks], None] | None = None,
) -> tuple[Checks, list[str], dict[str, float]]:
    """Start the jobs (:func:`start_outage_jobs`), cut the link, hold the cut ``duration_s``
    (the scenario's parameter), heal, and run :func:`check_recovery`.

    The burst ends inside the outage at one instant, so every reactor stops many heartbeats
    waiting in PyMongo's server selection in the same loop iteration: the pattern that broke
    its lock on Python 3.11. The long jobs still run when the link heals, so their leases
    expired while their handlers ran."""
    ids = start_outage_jobs(cluster, tag, duration_s)
    with fault_window() as window:
        cut()
        time.sleep(duration_s)
    heal()
    checks = Checks(cluster, tag)
    checks.measured["fault_s"] = round(window["end"] - window["start"], 2)
    if on_heal is not None:
        on_heal(checks)
    check_recovery(checks, cluster, ids, window, tag=tag, ready_bound_s=ready_bound_s)
    return checks, ids, window
