"""Real processes for the fault suite and the soak: the double, the proxy, reactors, and checks.

Topology: the double listens on ``127.0.0.2:P`` and advertises ``127.0.0.1:P``, where the
:class:`~reactor.testing.proxy.TcpProxy` listens. Reactors get a plain replica-set URI,
``mongodb://127.0.0.1:P/?replicaSet=rs0``: PyMongo adopts the advertised address, which is the
proxy's, so every reactor byte crosses the proxy. The harness's own client dials the double
directly (``directConnection=true``), so checks still work while the proxy cuts the reactors off.

Every time is ``time.monotonic()``, the clock of the execution records.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pymongo
from fault_records import RECORDS_ENV, Execution, load

from reactor.testing.proxy import TcpProxy

HERE = Path(__file__).resolve().parent
HANDLERS = HERE / "fault_handlers.py"
DOUBLE_SCRIPT = HERE / "fault_double.py"
DOUBLE_HOST, PROXY_HOST = "127.0.0.2", "127.0.0.1"
TERMINAL = frozenset({"succeeded", "failed", "cancelled"})
PROBE_EVERY_S = 0.25  # readiness sampling period
PROBE_TIMEOUT_S = 3.0  # an HTTP probe without an answer by then counts as "no answer"
START_BOUND_S = 90.0  # a reactor (imports, pool spawn) or the double must be up by then
STOP_BOUND_S = 60.0

Doc = dict[str, Any]


def wait_until(
    condition: Callable[[], Any], timeout_s: float, what: str, every_s: float = 0.2
) -> Any:
    """Poll ``condition`` until it returns something truthy; fail naming ``what`` at the bound."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:g} s waiting for {what}")
        time.sleep(every_s)


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def http_get(port: int, path: str, timeout_s: float = PROBE_TIMEOUT_S) -> tuple[int | None, Doc]:
    """``(status, body)``; status None when nothing answered within ``timeout_s``."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=timeout_s) as r:
            return r.status, _json(r.read())
    except urllib.error.HTTPError as exc:
        return exc.code, _json(exc.read())
    except (OSError, TimeoutError):
        return None, {}


def _json(data: bytes) -> Doc:
    try:
        body = json.loads(data)
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {"body": body}


# Processes: /proc is the source of truth for what is alive.


def process_alive(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def children_of(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.append(int(entry.name))
    return found


def descendants(pid: int) -> list[int]:
    found, todo = [], [pid]
    while todo:
        for child in children_of(todo.pop()):
            found.append(child)
            todo.append(child)
    return found


def command_line(pid: int) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return "?"
    return raw.replace(b"\0", b" ").decode(errors="replace").strip()[:120]


def carries_marker(pid: int, marker: str) -> bool:
    """Whether ``pid``'s environment holds ``marker`` (only our own processes do)."""
    try:
        return marker.encode() in Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return False


# The double.


class DoubleProcess:
    """``fault_double.py`` in its own process, restartable empty on the same port."""

    def __init__(self, port: int, log_path: Path, marker_env: dict[str, str]) -> None:
        self.port = port
        self.log_path = log_path
        self.env = marker_env
        self.proc: subprocess.Popen[bytes] | None = None
        self.control_port = 0

    @property
    def direct_uri(self) -> str:
        return f"mongodb://{DOUBLE_HOST}:{self.port}/?directConnection=true"

    def start(self) -> None:
        cmd = [sys.executable, str(DOUBLE_SCRIPT), "--host", DOUBLE_HOST, "--port", str(self.port)]
        cmd += ["--advertised-host", PROXY_HOST]
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=log, env=self.env)
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], START_BOUND_S)
        line = self.proc.stdout.readline() if ready else b""
        self.proc.stdout.close()  # it prints that one line only
        if not line:
            self.proc.kill()
            raise AssertionError(f"the double did not start; see {self.log_path}")
        self.control_port = int(json.loads(line)["control_port"])

    def kill(self) -> None:
        """SIGKILL: everything it held is gone, as when mongod dies with its data."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(STOP_BOUND_S)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(STOP_BOUND_S)
            except subprocess.TimeoutExpired:
                self.kill()

    def hook(self, name: str, **kwargs: Any) -> None:
        """Call one of the double's fault hooks in its process."""
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.control_port}/{name}",
            data=json.dumps(kwargs).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=30) as reply:
            assert reply.status == 200, reply.read()

    def pending_failures(self) -> int:
        with urllib.request.urlopen(
            f"http://127.0.0.1:{self.control_port}/pending", timeout=30
        ) as reply:
            return int(json.loads(reply.read())["pending"])


# Reactors.


class ReactorProcess:
    """One ``reactor run`` process with its own HTTP port and log file."""

    def __init__(self, name: str, env: dict[str, str], log_path: Path) -> None:
        self.name = name
        self.http_port = free_port()
        self.env = {**env, "REACTOR_WORKER_NAME": name, "REACTOR_HTTP_PORT": str(self.http_port)}
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self.seen_pids: set[int] = set()  # every pool worker and child seen under it

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self) -> None:
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "reactor.cli", "run"],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.starts += 1

    def wait_serving(self, timeout_s: float = START_BOUND_S) -> None:
        """Until /healthz answers (the reactor connected and started its tasks)."""

        def up() -> bool:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise AssertionError(f"{self.name} exited {self.proc.returncode}: {self.tail()}")
            return http_get(self.http_port, "/healthz", 1.0)[0] == 200

        wait_until(up, timeout_s, f"{self.name} to serve /healthz")

    def send(self, signum: int) -> None:
        if self.alive:
            self.remember_descendants()
            os.kill(self.pid, signum)

    def remember_descendants(self) -> list[int]:
        found = descendants(self.pid) if self.alive else []
        self.seen_pids.update(found)
        return found

    def wait_exit(self, timeout_s: float) -> int | None:
        assert self.proc is not None
        try:
            return self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            return None

    def readyz(self) -> tuple[int | None, Doc]:
        return http_get(self.http_port, "/readyz")

    def healthz(self) -> int | None:
        return http_get(self.http_port, "/healthz")[0]

    def events(self) -> list[Doc]:
        """The JSON log lines written so far."""
        found = []
        for line in self.log_path.read_text(errors="replace").splitlines():
            with contextlib.suppress(ValueError):
                doc = json.loads(line)
                if isinstance(doc, dict):
                    found.append(doc)
        return found

    def tail(self, n: int = 12, width: int = 300) -> str:
        """Its distinct warnings, errors and non-JSON lines (tracebacks), latest last; a line
        repeated with the same event and error shows once, with its count."""
        seen: dict[tuple[str, ...], tuple[int, str]] = {}
        for line in self.log_path.read_text(errors="replace").splitlines():
            try:
                doc = json.loads(line)
            except ValueError:
                key: tuple[str, ...] = ("text", line)
            else:
                if not isinstance(doc, dict) or doc.get("level") not in {"warning", "error"}:
                    continue
                key = (str(doc.get("event")), str(doc.get("error", ""))[:50])
            count = seen.pop(key, (0, ""))[0] + 1
            seen[key] = (count, line)
        picked = list(seen.values())[-n:]
        return "\n".join(f"{f'x{c} ' if c > 1 else ''}{line[:width]}" for c, line in picked)


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
    "max_jobs": 8,  # many jobs in flight: many heartbeats caught in server selection by a fault
    "cpu_workers": 1,
    "job_timeout_s": 120,
    "log_format": "json",
    "http_host": "127.0.0.1",
}


class Cluster:
    """The double in its own process, the proxy, and ``reactors`` reactor processes."""

    def __init__(self, root: Path, reactors: int = 3, **settings: Any) -> None:
        self.root = root
        self.records = root / "records"
        self.records.mkdir(parents=True, exist_ok=True)
        self.marker = f"{RECORDS_ENV}={self.records}"
        base = {k: v for k, v in os.environ.items() if not k.startswith("REACTOR_")}
        self.base_env = {**base, RECORDS_ENV: str(self.records)}
        self.db_name = "faults"
        self.proxy = TcpProxy(DOUBLE_HOST, 0, host=PROXY_HOST).start()
        self.proxy.upstream = (DOUBLE_HOST, self.proxy.port)
        self.double = DoubleProcess(self.proxy.port, root / "double.log", self.base_env)
        self.settings = {**DEFAULT_SETTINGS, **settings}
        self.reactors = [self._reactor(f"r{i + 1}") for i in range(reactors)]
        self.readiness = ReadinessLog()
        self.client: pymongo.MongoClient[Doc] | None = None
        self.submitted: dict[str, JobSpec] = {}

    def _reactor(self, name: str) -> ReactorProcess:
        env = {**self.base_env, **self.reactor_env()}
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

    def wait_final(self, job_ids: Iterable[str], timeout_s: float) -> None:
        """Until every job has a terminal status and a result (or fail, listing the rest)."""
        ids = list(job_ids)
        deadline = time.monotonic() + timeout_s
        while True:
            state = self.final_state(ids)
            pending = [j for j, (job, res) in state.items() if not _is_final(job, res)]
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


def _is_final(job: Doc | None, results: list[Doc]) -> bool:
    return job is not None and job.get("status") in TERMINAL and len(results) >= 1


def _brief(job: Doc | None, results: list[Doc]) -> Doc:
    if job is None:
        return {"job": None}
    return {
        "status": job.get("status"),
        "attempt": job.get("attempt"),
        "owner": job.get("lease_owner"),
        "results": len(results),
    }
