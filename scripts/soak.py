"""``make soak SOAK_S=N``: reactors under a random fault every second, then the ledger.

For N seconds: at least three ``reactor run`` processes behind the cuttable proxy, the double in
its own process, a steady stream of mixed jobs (loop, thread, process; some cancelled, some
re-run), and one random fault at least every second: the proxy refusing, blackholing or
resetting for short spans, the double's fault hooks, and SIGKILL, SIGSTOP+SIGCONT and SIGTERM of
reactors, which the soak's own supervisor restarts when they exit, as a real supervisor would.
Then the faults stop, a quiet period lets every job finish, and the ledger is checked. The last
line is exactly::

    soak: <jobs> jobs, lost <L>, duplicates <D>, concurrent <C>, wedged <W>

- lost: a submitted job without a terminal status and a result at the end, or a re-run asked for
  whose job still shows the result of the run before it.
- duplicates: a job with more than one result document; a result for a job never submitted; a
  succeeded result whose token names no execution of that job that ran to its end (no handler
  produced it); or two executions of one job under the same claim (its fencing token,
  ``ctx.fence``): one claim executed twice, which at-least-once never needs. A reclaim after a
  reactor died is a new claim of the same attempt (reclaims are not charged). Counted once per job.
- concurrent: a job with two executions that overlap (the rule in tests/faults/fault_records.py;
  a SIGSTOPped reactor's own handlers are excused for 2 s after SIGCONT).
- wedged: a reactor that, after the faults stopped, is not alive, does not answer /healthz with
  200, or does not run a fresh probe job within the probe bound.

The exit status is 1 when any count but jobs is non-zero. The double is not restarted empty
here: that loses every job by design, and the fault suite covers it.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import random
import signal
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the fault suite's harness is the package tests.faults

from pymongo.errors import DuplicateKeyError, PyMongoError  # noqa: E402

from tests.faults.fault_harness import TERMINAL, Cluster, JobSpec  # noqa: E402
from tests.faults.fault_processes import ReactorProcess  # noqa: E402
from tests.faults.fault_records import Grace, overlaps  # noqa: E402

FAULT_EVERY_S = 1.0
SUBMIT_EVERY_S = 0.25
RESUME_GRACE_S = 2.0
GRACE_S = 12.0  # SIGTERM to SIGKILL: REACTOR_DRAIN_S (2) plus 10 s, like a pod's grace period
PROBE_BOUND_S = 60.0
STEP_DOWN_CODES = (10107, 91, 189, 11600)  # NotWritablePrimary, ShutdownInProgress, ...
KINDS = (("loop_job", 0.4), ("thread_job", 0.3), ("cpu_job", 0.3))


@dataclass
class Ledger:
    """What the soak asked for, job by job."""

    specs: dict[str, JobSpec] = field(default_factory=dict)
    reruns: dict[str, dt.datetime] = field(default_factory=dict)  # job -> last re-run asked
    cancels: set[str] = field(default_factory=set)
    faults: Counter[str] = field(default_factory=Counter)
    graces: list[Grace] = field(default_factory=list)
    terminated: dict[int, float] = field(default_factory=dict)  # pid -> when SIGTERM was sent
    lock: threading.Lock = field(default_factory=threading.Lock)


def retrying(action: Callable[[], Any], tries: int = 20) -> Any:
    """Run a client operation, riding out the faults the soak itself injects."""
    for attempt in range(tries):
        try:
            return action()
        except DuplicateKeyError:
            return None  # an insert that landed before its reply was lost
        except PyMongoError:
            if attempt == tries - 1:
                raise
            time.sleep(0.1)
    return None


class Workload(threading.Thread):
    """Submits a job every 0.25 s; cancels about 5 % and re-runs about 5 % of finished ones."""

    def __init__(self, cluster: Cluster, ledger: Ledger, rng: random.Random) -> None:
        super().__init__(daemon=True, name="workload")
        self.cluster, self.ledger, self.rng = cluster, ledger, rng
        self.stop = threading.Event()
        self.count = 0

    def run(self) -> None:
        while not self.stop.wait(SUBMIT_EVERY_S):
            self.submit()
            roll = self.rng.random()
            if roll < 0.05:
                self.cancel()
            elif roll < 0.10:
                self.rerun()

    def submit(self) -> None:
        command = self.rng.choices([k for k, _ in KINDS], [w for _, w in KINDS])[0]
        roll = self.rng.random()
        seconds = self.rng.uniform(0.05, 0.5) if roll < 0.7 else self.rng.uniform(0.5, 3.0)
        if roll > 0.95:
            seconds = self.rng.uniform(3.0, 8.0)
        spec = JobSpec(f"soak-{self.count}", command, round(seconds, 2))
        self.count += 1
        with self.ledger.lock:
            self.ledger.specs[spec.job_id] = spec
        retrying(lambda: self.cluster.db.jobs.insert_one(spec.doc()))

    def cancel(self) -> None:
        """Cancel one of the last 20 jobs submitted, unless it has finished already."""
        job_id = self.rng.choice(list(self.ledger.specs)[-20:])
        update: dict[str, Any] = {"$set": {"status": "cancelled"}}
        if self.rng.random() < 0.5:
            update = {"$set": {"cancel_requested": True, "cancel_requested_at": _now()}}
        with self.ledger.lock:
            self.ledger.cancels.add(job_id)
        query = {"job_id": job_id, "status": {"$in": [None, "queued", "running"]}}
        retrying(lambda: self.cluster.db.jobs.update_one(query, update))

    def rerun(self) -> None:
        """Set a finished (succeeded or failed) job back to queued."""
        candidates = [j for j in self.ledger.specs if j not in self.ledger.cancels]
        job_id = self.rng.choice(candidates)
        query = {"job_id": job_id, "status": {"$in": ["succeeded", "failed"]}}
        asked = _now()
        outcome = retrying(
            lambda: self.cluster.db.jobs.update_one(query, {"$set": {"status": "queued"}})
        )
        if outcome is not None and outcome.modified_count:
            with self.ledger.lock:
                self.ledger.reruns[job_id] = asked


class Supervisor(threading.Thread):
    """Restarts every reactor that exited, and SIGKILLs one still running :data:`GRACE_S`
    after its SIGTERM, as Kubernetes (terminationGracePeriodSeconds) or systemd would. It does
    not act on /healthz, so a wedged reactor stays visible."""

    def __init__(self, cluster: Cluster, ledger: Ledger) -> None:
        super().__init__(daemon=True, name="supervisor")
        self.cluster, self.ledger = cluster, ledger
        self.stop = threading.Event()
        self.restarts: Counter[str] = Counter()

    def run(self) -> None:
        while not self.stop.wait(0.2):
            for reactor in self.cluster.reactors:
                self._tend(reactor)

    def _tend(self, reactor: ReactorProcess) -> None:
        if reactor.proc is None:
            return
        if reactor.proc.poll() is not None:
            self.ledger.terminated.pop(reactor.pid, None)
            self.restarts[f"exit {reactor.proc.returncode}"] += 1
            reactor.start()
            return
        sent = self.ledger.terminated.get(reactor.pid)
        if sent is not None and time.monotonic() - sent > GRACE_S:
            self.restarts["SIGKILL after the grace period"] += 1
            reactor.send(signal.SIGKILL)


class Faults(threading.Thread):
    """One random fault at least every second; each heals itself after a short span."""

    def __init__(self, cluster: Cluster, ledger: Ledger, rng: random.Random) -> None:
        super().__init__(daemon=True, name="faults")
        self.cluster, self.ledger, self.rng = cluster, ledger, rng
        self.stop = threading.Event()
        self.stopped: dict[int, ReactorProcess] = {}  # pid -> reactor under SIGSTOP
        self.proxy_generation = 0
        self.stall_generation = 0
        self.lock = threading.Lock()
        self.timers: list[threading.Timer] = []

    def run(self) -> None:
        faults = [
            self.refuse, self.blackhole, self.blackhole_reset, self.reset, self.step_down,
            self.drop, self.stall, self.lose_history, self.kill, self.freeze, self.terminate,
        ]  # fmt: skip
        while not self.stop.wait(FAULT_EVERY_S * self.rng.uniform(0.3, 1.0)):
            fault = self.rng.choice(faults)
            try:
                fault()
            except Exception as exc:  # a fault that could not be applied is reported, not fatal
                self.ledger.faults[f"{fault.__name__} failed: {type(exc).__name__}"] += 1
                continue
            self.ledger.faults[fault.__name__] += 1

    def later(self, delay_s: float, action: Callable[[], None]) -> None:
        timer = threading.Timer(delay_s, action)
        timer.daemon = True
        self.timers.append(timer)
        timer.start()

    def span(self) -> float:
        return self.rng.uniform(0.2, 2.0)

    def _proxy(self, cut: Callable[[], None], heal: Callable[[], None]) -> None:
        with self.lock:
            self.proxy_generation += 1
            generation = self.proxy_generation
            cut()

        def restore() -> None:
            with self.lock:
                if generation == self.proxy_generation:
                    heal()

        self.later(self.span(), restore)

    def refuse(self) -> None:
        self._proxy(self.cluster.proxy.refuse, self.cluster.proxy.forward)

    def blackhole(self) -> None:
        self._proxy(self.cluster.proxy.blackhole, self.cluster.proxy.forward)

    def blackhole_reset(self) -> None:
        self._proxy(self.cluster.proxy.blackhole, self.cluster.proxy.reset)

    def reset(self) -> None:
        with self.lock:
            self.proxy_generation += 1
            self.cluster.proxy.reset()

    def step_down(self) -> None:
        code = self.rng.choice(STEP_DOWN_CODES)
        hook, n = self.cluster.double.hook, self.rng.randint(1, 5)
        writes = ["insert", "update", "delete", "findAndModify"]
        hook("fail_next", n=n, code=code, labels=["RetryableWriteError"], commands=writes)
        hook("fail_next", n=n, code=code, commands=["find", "aggregate", "getMore", "ping"])

    def drop(self) -> None:
        self.cluster.double.hook("drop_connections")

    def stall(self) -> None:
        with self.lock:
            self.stall_generation += 1
            generation = self.stall_generation
            self.cluster.double.hook("stall_change_streams")

        def resume() -> None:
            with self.lock:
                if generation == self.stall_generation:
                    self.cluster.double.hook("resume_change_streams")

        self.later(self.rng.uniform(0.5, 3.0), resume)

    def lose_history(self) -> None:
        self.cluster.double.hook("forget_history")
        self.cluster.double.hook("drop_connections")

    def _victim(self) -> ReactorProcess | None:
        with self.lock:
            up = [r for r in self.cluster.reactors if r.alive and r.pid not in self.stopped]
        return self.rng.choice(up) if len(up) > 1 else None  # keep one serving

    def kill(self) -> None:
        victim = self._victim()
        if victim is not None:
            victim.send(signal.SIGKILL)

    def terminate(self) -> None:
        victim = self._victim()
        if victim is not None:
            self.ledger.terminated.setdefault(victim.pid, time.monotonic())
            victim.send(signal.SIGTERM)

    def freeze(self) -> None:
        victim = self._victim()
        if victim is None:
            return
        pid = victim.pid
        with self.lock:
            self.stopped[pid] = victim
        victim.send(signal.SIGSTOP)
        self.later(self.rng.uniform(0.5, 5.0), lambda: self.thaw(pid))

    def thaw(self, pid: int) -> None:
        with self.lock:
            victim = self.stopped.pop(pid, None)
        if victim is not None and victim.alive and victim.pid == pid:
            victim.send(signal.SIGCONT)
            now = time.monotonic()
            self.ledger.graces.append(Grace(pid, now, now + RESUME_GRACE_S))

    def heal_all(self) -> None:
        """Stop injecting and undo every fault still in force."""
        self.stop.set()
        self.join()
        for timer in self.timers:
            timer.cancel()
        for pid in list(self.stopped):
            self.thaw(pid)
        with self.lock:
            self.proxy_generation += 1
            self.stall_generation += 1
            self.cluster.proxy.forward()
        self.cluster.double.hook("resume_change_streams")


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _wait_all_final(cluster: Cluster, ledger: Ledger, quiet_s: float) -> float:
    """Until every submitted job is final (and every re-run has its new result), or quiet_s."""
    began = time.monotonic()
    while time.monotonic() - began < quiet_s:
        if not _lost(cluster, ledger):
            break
        time.sleep(1.0)
    return time.monotonic() - began


def _state(cluster: Cluster, ids: list[str]) -> dict[str, tuple[Any, list[Any]]]:
    return retrying(lambda: cluster.final_state(ids))  # type: ignore[no-any-return]


def _lost(cluster: Cluster, ledger: Ledger) -> list[str]:
    ids = list(ledger.specs)
    lost = []
    for job_id, (job, results) in _state(cluster, ids).items():
        if job is None or job.get("status") not in TERMINAL or not results:
            lost.append(job_id)
            continue
        asked = ledger.reruns.get(job_id)
        newest = max((r.get("finished_at") for r in results if r.get("finished_at")), default=None)
        if asked is not None and (newest is None or newest < asked):
            lost.append(job_id)
    return lost


def _duplicates(cluster: Cluster, ledger: Ledger) -> set[str]:
    found: set[str] = set()
    runs = cluster.executions()
    for job_id, (_, results) in _state(cluster, list(ledger.specs)).items():
        if len(results) > 1:
            found.add(job_id)
        for result in results:
            token = (result.get("result") or {}).get("token")
            ended = {e.token for e in runs.get(job_id, []) if e.ended}
            if result.get("status") == "succeeded" and token not in ended:
                found.add(job_id)
        claims = Counter(e.fence for e in runs.get(job_id, []) if e.fence is not None)
        if any(n > 1 for n in claims.values()):
            found.add(job_id)
    strays = retrying(
        lambda: cluster.db.results.distinct("job_id", {"job_id": {"$nin": list(ledger.specs)}})
    )
    return found | {f"stray:{j}" for j in strays}


def _wedged(cluster: Cluster, ledger: Ledger) -> list[str]:
    """Reactors not alive, not answering /healthz 200, or running no fresh probe."""
    wedged = [r.name for r in cluster.reactors if not r.alive or r.healthz() != 200]
    serving = [r for r in cluster.reactors if r.name not in wedged]
    probes = [JobSpec(f"soak-probe-{i}", "probe", 2.0) for i in range(2 * len(serving))]
    for spec in probes:
        ledger.specs[spec.job_id] = spec
        retrying(lambda s=spec: cluster.db.jobs.insert_one(s.doc()))
    deadline = time.monotonic() + PROBE_BOUND_S
    ids = [p.job_id for p in probes]
    while time.monotonic() < deadline:
        state = _state(cluster, ids)
        if all(j and j.get("status") in TERMINAL and r for j, r in state.values()):
            break
        time.sleep(0.5)
    runs = cluster.executions()
    hosts = {e.host_pid for j in ids for e in runs.get(j, []) if e.ended}
    return wedged + [r.name for r in serving if r.pid not in hosts]


def soak(seconds: float, reactors: int, quiet_s: float, seed: int, root: Path) -> int:
    rng = random.Random(seed)
    ledger = Ledger()
    cluster = Cluster(root, reactors).start()
    print(f"soak: {reactors} reactors, {seconds:g} s of faults, seed {seed}, files in {root}")
    supervisor, workload = Supervisor(cluster, ledger), Workload(cluster, ledger, rng)
    faults = Faults(cluster, ledger, rng)
    try:
        for thread in (supervisor, workload, faults):
            thread.start()
        _progress(seconds, workload, ledger, supervisor)
        workload.stop.set()
        workload.join()
        faults.heal_all()
        waited = _wait_all_final(cluster, ledger, quiet_s)
        print(f"soak: quiet period {waited:.0f} s; faults {dict(ledger.faults)}")
        print(f"soak: restarts by the supervisor {dict(supervisor.restarts)}")
        supervisor.stop.set()
        supervisor.join()
        return _report(cluster, ledger)
    finally:
        supervisor.stop.set()
        cluster.close()


def _progress(seconds: float, workload: Workload, ledger: Ledger, sup: Supervisor) -> None:
    end = time.monotonic() + seconds
    while (left := end - time.monotonic()) > 0:
        time.sleep(min(10.0, left))
        print(
            f"soak: {seconds - max(left - 10, 0):.0f} s, {workload.count} jobs, "
            f"{sum(ledger.faults.values())} faults, {sum(sup.restarts.values())} restarts",
            flush=True,
        )


def _report(cluster: Cluster, ledger: Ledger) -> int:
    wedged = _wedged(cluster, ledger)
    lost = _lost(cluster, ledger)
    duplicates = _duplicates(cluster, ledger)
    concurrent = {o.job_id for o in overlaps(cluster.executions(), ledger.graces)}
    statuses = Counter(
        (res[0].get("status"), (res[0].get("error") or {}).get("type")) if res else ("none", None)
        for _, res in _state(cluster, list(ledger.specs)).values()
    )
    state = _state(cluster, lost[:10])
    detail = {
        "lost": [
            {
                "job_id": j,
                "status": (state[j][0] or {}).get("status"),
                "results": len(state[j][1]),
                "cancel_asked": j in ledger.cancels,
                "rerun_asked": j in ledger.reruns,
            }
            for j in lost[:10]
        ],
        "duplicates": sorted(duplicates)[:10],
        "concurrent": sorted(concurrent)[:10],
        "wedged": wedged,
        "outcomes": {f"{s}/{e}" if e else str(s): n for (s, e), n in statuses.items()},
    }
    print("soak: " + json.dumps(detail, default=str))
    jobs = sum(1 for j in ledger.specs if not j.startswith("soak-probe-"))
    counts = (len(lost), len(duplicates), len(concurrent), len(wedged))
    print(
        f"soak: {jobs} jobs, lost {counts[0]}, duplicates {counts[1]}, "
        f"concurrent {counts[2]}, wedged {counts[3]}",
        flush=True,
    )
    return 1 if any(counts) else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=180.0, help="how long faults go on")
    parser.add_argument("--reactors", type=int, default=3, help="reactor processes (>= 3)")
    parser.add_argument("--quiet-s", type=float, default=120.0, help="bound of the quiet period")
    parser.add_argument("--seed", type=int, default=None, help="random seed (default: time)")
    parser.add_argument("--root", type=Path, default=None, help="where logs and records go")
    ns = parser.parse_args(argv)
    if ns.reactors < 3:
        parser.error("--reactors must be at least 3")
    seed = ns.seed if ns.seed is not None else int(time.time())
    root = ns.root or Path(tempfile.mkdtemp(prefix="reactor-soak-"))
    root.mkdir(parents=True, exist_ok=True)
    return soak(ns.seconds, ns.reactors, ns.quiet_s, seed, root)


if __name__ == "__main__":
    sys.exit(main())
