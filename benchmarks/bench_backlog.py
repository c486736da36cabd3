"""A backlog through one real ``reactor run``: 20,000 ``echo`` jobs queued before it starts.

The double runs in its own process (``reactor dev-mongo``), the reactor in another, as an
operator would run them; the clock runs from the reactor's start to the last result. Reports
jobs per second and the CPU seconds each process used per job (``/proc/<pid>/stat``).

    python benchmarks/bench_backlog.py [JOBS]
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from typing import Any

import pymongo

JOBS = 20_000
CLK_TCK = os.sysconf("SC_CLK_TCK")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _cpu_s(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime


def _wait_listening(port: int, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port}")


def _drain(uri: str, jobs: int, root: str, port: int) -> dict[str, Any]:
    client: pymongo.MongoClient[dict[str, Any]] = pymongo.MongoClient(uri)
    db = client.bench
    for start in range(0, jobs, 5_000):
        db.jobs.insert_many(
            [
                {"job_id": f"b{i}", "command": "echo", "args": {"i": i}}
                for i in range(start, min(jobs, start + 5_000))
            ]
        )
    env = {
        **os.environ,
        "REACTOR_MONGO_URI": uri,
        "REACTOR_DB": "bench",
        "REACTOR_JOBS_ROOT": root,
        "REACTOR_HTTP_PORT": "0",
        "REACTOR_LOG_LEVEL": "warning",
        "REACTOR_LOG_FORMAT": "json",
    }
    started = time.monotonic()
    reactor = subprocess.Popen(
        [sys.executable, "-m", "reactor.cli", "run"], env=env, stdout=subprocess.DEVNULL
    )
    try:
        seen = db.results.count_documents({})
        with db.results.watch(
            [{"$match": {"operationType": "insert"}}], max_await_time_ms=500
        ) as stream:
            while seen < jobs:
                if stream.try_next() is not None:
                    seen += 1
                if reactor.poll() is not None:
                    raise RuntimeError(f"reactor exited with {reactor.returncode}")
        elapsed = time.monotonic() - started
        reactor_cpu = _cpu_s(reactor.pid)
    finally:
        reactor.terminate()
        reactor.wait(timeout=60)
        client.close()
    return {"jobs": jobs, "seconds": round(elapsed, 1), "jobs_per_s": round(jobs / elapsed, 1),
            "reactor_cpu_ms_per_job": round(reactor_cpu / jobs * 1000, 2)}  # fmt: skip


def main(jobs: int = JOBS) -> dict[str, Any]:
    port = _free_port()
    double = subprocess.Popen(
        [sys.executable, "-m", "reactor.cli", "dev-mongo", "--port", str(port)],
        stdout=subprocess.DEVNULL,
    )
    try:
        _wait_listening(port)
        with tempfile.TemporaryDirectory(prefix="bench-backlog-") as root:
            found = _drain(f"mongodb://127.0.0.1:{port}/?replicaSet=rs0", jobs, root, port)
        found["double_cpu_ms_per_job"] = round(_cpu_s(double.pid) / jobs * 1000, 2)
    finally:
        double.terminate()
        double.wait(timeout=30)
    found["load_1min"] = os.getloadavg()[0]
    print(
        f"backlog: {found['jobs']} jobs in {found['seconds']} s ({found['jobs_per_s']} jobs/s); "
        f"CPU per job: reactor {found['reactor_cpu_ms_per_job']} ms, double "
        f"{found['double_cpu_ms_per_job']} ms; load {found['load_1min']:.1f}"
    )
    return found


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else JOBS)
