"""The cluster of the fault suite and the soak: the double, the proxy, reactors, readiness.

Topology: the double listens on ``127.0.0.2:P`` and advertises ``127.0.0.1:P``, where the
:class:`~reactor.testing.proxy.TcpProxy` listens. Reactors get a plain replica-set URI,
``mongodb://127.0.0.1:P/?replicaSet=rs0``: PyMongo adopts the advertised address, which is the
proxy's, so every reactor byte crosses the proxy. The harness's own client dials the double
directly (``directConnection=true``), so checks still work while the proxy cuts the reactors off.

Every time is ``time.monotonic()``, the clock of the execution records.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pymongo

from reactor.testing.proxy import TcpProxy
from tests.faults.fault_processes import (
    DOUBLE_HOST,
    PROBE_TIMEOUT_S,
    PROXY_HOST,
    STOP_BOUND_S,
    DoubleProcess,
    ReactorProcess,
    carries_marker,
    process_alive,
    wait_until,
)
from tests.faults.fault_records import RECORDS_ENV, Execution, load
from tests.pythonpath import pythonpath

HERE = Path(__file__).resolve().parent
HANDLERS = HERE / "fault_handlers.py"
TERMINAL = frozenset({"succeeded", "failed", "cancelled"})
PROBE_EVERY_S = 0.25  # readiness sampling period

Doc = dict[str, Any]


# Readiness over time.


@dataclass(frozen=True)
class Sample:
    name: str
    sent: float
    done: float
    status: int | None
    reasons: tuple[str, ...]


class ReadinessLog:
    """Samples every reactor's /readyz every :data:`PROBE_EVERY_S`, one thread per reactor."""

    def __init__(self) -> None:
        self.samples: list[Sample] = []
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()

    def watch(self, reactor: ReactorProcess) -> None:
        thread = threading.Thread(target=self._sample, args=(reactor,), daemon=True)
        self._threads.append(thread)
        thread.start()

    def _sample(self, reactor: ReactorProcess) -> None:
        while not self._stop.is_set():
            sent = time.monotonic()
            if reactor.alive:
                status, body = reactor.readyz()
                sample = Sample(
                    reactor.name, sent, time.monotonic(), status, tuple(body.get("reasons", ()))
                )
                with self._lock:
                    self.samples.append(sample)
            self._stop.wait(PROBE_EVERY_S)

    def close(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(PROBE_TIMEOUT_S + 5)

    def of(self, name: str, since: float, until: float) -> list[Sample]:
        with self._lock:
            return [s for s in self.samples if s.name == name and since <= s.sent <= until]

    def first_ready(self, name: str, since: float) -> Sample | None:
        return next((s for s in self.of(name, since, float("inf")) if s.status == 200), None)


# The cluster.


@dataclass
class JobSpec:
    job_id: str
    command: str
    seconds: float
    extra: Doc = field(default_factory=dict)

    def doc(self) -> Doc:
        return {
            "job_id": self.job_id,
            "command": self.command,
            "args": {"seconds": self.seconds, **self.extra},
        }


KINDS = {"loop": "loop_job", "thread": "thread_job", "process": "cpu_job"}
DURATIONS_S = (0.1, 0.5, 2.0, 4.0)  # short ones and a few seconds long


def mixed_jobs(
    prefix: str,
    n: int,
    durations: Iterable[float] = DURATIONS_S,
    kinds: Iterable[str] = tuple(KINDS),
) -> list[JobSpec]:
    """``n`` jobs cycling through the kinds (loop, thread, process) and the given durations."""
    picked, lengths = [(k, KINDS[k]) for k in kinds], list(durations)
    width = len(picked)
    return [
        JobSpec(
            f"{prefix}-{picked[i % width][0]}-{i}",
            picked[i % width][1],
            lengths[(i // width) % len(lengths)],
        )
        for i in range(n)
    ]


def long_jobs(
    prefix: str, per_kind: int, seconds: float, kinds: Iterable[str] = tuple(KINDS)
) -> list[JobSpec]:
    """``per_kind`` jobs of ``seconds`` for each kind."""
    return [
        JobSpec(f"{prefix}-long-{kind}-{i}", KINDS[kind], seconds)
        for i in range(per_kind)
        for kind in kinds
    ]


DEFAULT_SETTINGS = {
    "lease_s": 3,
    "connect_timeout_s": 5,
    "ready_stall_s": 4,
    "liveness_s": 10,
    "drain_s": 2,
    "max_jobs": 16,  # the default: many heartbeats in flight for a fault to catch
    "cpu_workers": 1,
    "job_timeout_s": 120,
    "log_format": "json",
    "http_host": "127.0.0.1",
}


class Cluster:
    """The double in its own process, the proxy, and ``reactors`` reactor processes."""

    def __init__(
        self,
        root: Path,
        reactors: int = 3,
        extra_env: dict[str, dict[str, str]] | None = None,
        **settings: Any,
    ) -> None:
        self.root = root
        self.records = root / "records"
        self.records.mkdir(parents=True, exist_ok=True)
        self.marker = f"{RECORDS_ENV}={self.records}"
        base = {k: v for k, v in os.environ.items() if not k.startswith("REACTOR_")}
        # fault_handlers.py imports tests.faults.fault_records: reactors need the package
        self.base_env = {**base, RECORDS_ENV: str(self.records), "PYTHONPATH": pythonpath(base)}
        self.db_name = "faults"
        self.proxy = TcpProxy(DOUBLE_HOST, 0, host=PROXY_HOST).start()
        self.proxy.upstream = (DOUBLE_HOST, self.proxy.port)
        self.double = DoubleProcess(self.proxy.port, root / "double.log", self.base_env)
        self.settings = {**DEFAULT_SETTINGS, **settings}
        self.extra_env = extra_env or {}  # by reactor name: a skewed clock, say
        self.reactors = [self._reactor(f"r{i + 1}") for i in range(reactors)]
        self.readiness = ReadinessLog()
        self.client: pymongo.MongoClient[Doc] | None = None
        self.submitted: dict[str, JobSpec] = {}

    def _reactor(self, name: str) -> ReactorProcess:
        env = {**self.base_env, **self.reactor_env(), **self.extra_env.get(name, {})}
        return ReactorProcess(name, env, self.root / f"{name}.log")

    def reactor_env(self) -> dict[str, str]:
        env = {f"REACTOR_{k.upper()}": str(v) for k, v in self.settings.items()}
        env["REACTOR_MONGO_URI"] = f"mongodb://{PROXY_HOST}:{self.proxy.port}/?replicaSet=rs0"
        env["REACTOR_DB"] = self.db_name
        env["REACTOR_JOBS_ROOT"] = str(self.root / "jobs")
        env["REACTOR_HANDLER_MODULES"] = str(HANDLERS)
        return env

    # Lifecycle.

    def start(self) -> Cluster:
        self.double.start()
        self.client = pymongo.MongoClient(
            self.double.direct_uri, tz_aware=True, serverSelectionTimeoutMS=30_000
        )
        for reactor in self.reactors:
            reactor.start()
        for reactor in self.reactors:
            reactor.wait_serving()
            self.readiness.watch(reactor)
        for reactor in self.reactors:
            wait_until(lambda r=reactor: r.readyz()[0] == 200, 60, f"{reactor.name} ready")
        return self

    def close(self) -> None:
        self.readiness.close()
        for reactor in self.reactors:
            if reactor.alive:
                reactor.remember_descendants()
                reactor.send(signal.SIGCONT)
                reactor.send(signal.SIGKILL)
                reactor.wait_exit(STOP_BOUND_S)
        self.kill_leftovers()
        if self.client is not None:
            self.client.close()
        self.proxy.stop()
        self.double.stop()

    def kill_leftovers(self) -> list[int]:
        """SIGKILL every process of ours still alive (workers, children); returns their pids."""
        left = [pid for pid in self.known_pids() if process_alive(pid)]
        for pid in left:
            if carries_marker(pid, self.marker):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        return left

    def known_pids(self) -> set[int]:
        pids: set[int] = set()
        for reactor in self.reactors:
            pids |= reactor.seen_pids
        for runs in self.executions().values():
            for run in runs:
                pids.add(run.pid)
                pids.update(run.children)
        alive_reactors = {r.pid for r in self.reactors if r.proc is not None and r.alive}
        return pids - alive_reactors

    # Jobs.

    @property
    def db(self) -> Any:
        assert self.client is not None
        return self.client[self.db_name]

    def submit(self, specs: Iterable[JobSpec]) -> list[str]:
        specs = list(specs)
        self.db.jobs.insert_many([spec.doc() for spec in specs])
        self.submitted.update({spec.job_id: spec for spec in specs})
        return [spec.job_id for spec in specs]

    def executions(self) -> dict[str, list[Execution]]:
        return load(self.records)

    def wait_started(self, job_ids: Iterable[str], n: int, timeout_s: float = 60) -> None:
        """Until at least ``n`` of these jobs have an execution that has not ended yet."""
        wanted = set(job_ids)

        def running() -> bool:
            runs = self.executions()
            return sum(1 for j in wanted if any(not e.ended for e in runs.get(j, []))) >= n

        wait_until(running, timeout_s, f"{n} running executions")

    def final_state(self, job_ids: Iterable[str]) -> dict[str, tuple[Doc | None, list[Doc]]]:
        ids = list(job_ids)
        jobs = {d["job_id"]: d for d in self.db.jobs.find({"job_id": {"$in": ids}})}
        results: dict[str, list[Doc]] = {j: [] for j in ids}
        for doc in self.db.results.find({"job_id": {"$in": ids}}):
            results[doc["job_id"]].append(doc)
        return {j: (jobs.get(j), results[j]) for j in ids}

    def wait_final(
        self,
        job_ids: Iterable[str],
        timeout_s: float,
        without_result: Callable[[], set[str]] = set,
    ) -> None:
        """Until every job has a terminal status and a result (or fail, listing the rest); the
        jobs ``without_result`` names need no result (the job document alone has it)."""
        ids = list(job_ids)
        deadline = time.monotonic() + timeout_s
        while True:
            state, exempt = self.final_state(ids), without_result()
            pending = [j for j, (job, res) in state.items()
                       if not _is_final(job, res, needs_result=j not in exempt)]  # fmt: skip
            if not pending:
                return
            if time.monotonic() > deadline:
                shown = {j: _brief(*state[j]) for j in pending[:8]}
                raise AssertionError(
                    f"{len(pending)} of {len(ids)} jobs not final {timeout_s:g} s on: {shown}"
                )
            time.sleep(0.25)

    def evidence(self) -> str:
        """The tail of every reactor log, for assertion messages."""
        parts = []
        for r in self.reactors:
            state = "alive" if r.alive else f"exited {r.proc.returncode if r.proc else None}"
            parts.append(f"--- {r.name} (pid {r.proc.pid if r.proc else '-'}, {state})\n{r.tail()}")
        return "\n".join(parts)


def _is_final(job: Doc | None, results: list[Doc], *, needs_result: bool = True) -> bool:
    return job is not None and job.get("status") in TERMINAL and (results or not needs_result)


def _brief(job: Doc | None, results: list[Doc]) -> Doc:
    if job is None:
        return {"job": None}
    return {
        "status": job.get("status"),
        "attempt": job.get("attempt"),
        "owner": job.get("lease_owner"),
        "results": len(results),
    }
