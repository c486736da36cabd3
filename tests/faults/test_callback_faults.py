"""Callbacks under faults (issue 16's new way to fail): the receiver is down (503) while jobs
with a ``callback_url`` finish, the reactor holding their deliveries is SIGKILLed and MongoDB is
blackholed; once both are back every delivery arrives, signed, and is recorded ``delivered``,
and no job's status moved. Three reactors."""

from __future__ import annotations

import json
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from reactor.callbacks.policy import verify
from tests.faults.fault_checks import (
    PROBE_BOUND_S,
    Checks,
    check_alive_and_processing,
    check_one_outcome_each,
    fault_window,
)
from tests.faults.fault_harness import Cluster, JobSpec
from tests.faults.fault_processes import STOP_BOUND_S, wait_until

pytestmark = [pytest.mark.faults, pytest.mark.timeout(300)]

SECRET = "fault-suite-secret"
JOBS = 12
DELIVERED_BOUND_S = 60.0  # every delivery recorded this long after the receiver is back


@dataclass
class Receiver:
    """A loopback HTTP receiver: 503 while ``down``, else 200; records every POST."""

    down: bool = True
    posts: list[tuple[int, dict[str, str], bytes]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    url: str = ""

    def answer(self, headers: dict[str, str], body: bytes) -> int:
        with self.lock:
            status = 503 if self.down else 200
            self.posts.append((status, headers, body))
            return status

    def accepted(self) -> list[tuple[dict[str, str], bytes]]:
        with self.lock:
            return [(h, b) for status, h, b in self.posts if status == 200]

    def attempts(self) -> int:
        with self.lock:
            return len(self.posts)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    found = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            status = found.answer({k.lower(): v for k, v in self.headers.items()}, body)
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    found.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield found
    server.shutdown()
    server.server_close()
    thread.join(10)


def submit_hooked(cluster: Cluster, url: str) -> list[str]:
    specs = [JobSpec(f"cb-{i}", "loop_job", 0.2) for i in range(JOBS)]
    cluster.db.jobs.insert_many([{**spec.doc(), "callback_url": url} for spec in specs])
    cluster.submitted.update({spec.job_id: spec for spec in specs})
    return [spec.job_id for spec in specs]


def holders(cluster: Cluster, ids: list[str]) -> dict[str, int]:
    """Pending deliveries by the reactor (owner's worker name) holding them."""
    counts: dict[str, int] = {}
    for doc in cluster.db.jobs.find({"job_id": {"$in": ids}}, {"callback": 1}):
        owner = str((doc.get("callback") or {}).get("owner") or "")
        counts[owner.split("/")[0]] = counts.get(owner.split("/")[0], 0) + 1
    return counts


def check_deliveries(receiver: Receiver, ids: list[str]) -> None:
    """One accepted, signed delivery per job, carrying its final status."""
    by_job: dict[str, list[dict[str, Any]]] = {}
    for headers, body in receiver.accepted():
        assert verify(SECRET.encode(), headers["x-reactor-timestamp"], body,
                      headers["x-reactor-signature"]), headers  # fmt: skip
        doc = json.loads(body)
        by_job.setdefault(doc["job_id"], []).append(doc)
    missing = sorted(set(ids) - set(by_job))
    assert not missing, f"no accepted delivery for {missing}"
    assert all(d["status"] == "succeeded" for docs in by_job.values() for d in docs)


def test_deliveries_survive_a_down_receiver_a_killed_holder_and_a_blackhole(
    make_cluster, receiver: Receiver
) -> None:
    """The receiver answers 503 while 12 jobs finish; the reactor holding the most deliveries
    is SIGKILLed and MongoDB blackholed for 5 s; then the receiver is back: every job's
    callback is delivered and recorded, signed, and every job stays succeeded."""
    cluster: Cluster = make_cluster(callback_secret=SECRET, callback_backoff_s=0.5,
                                    callback_max_backoff_s=2, callback_max_attempts=60)  # fmt: skip
    ids = submit_hooked(cluster, receiver.url)
    checks = Checks(cluster, "callbacks")
    wait_until(lambda: receiver.attempts() >= JOBS, 60, "a first attempt per job")
    counts = holders(cluster, ids)
    victim = max(cluster.reactors, key=lambda r: counts.get(r.name, 0))
    survivors = [r for r in cluster.reactors if r is not victim]
    checks.measured["held_by_victim"] = counts.get(victim.name, 0)
    with fault_window():
        victim.send(signal.SIGKILL)
        victim.wait_exit(STOP_BOUND_S)
        cluster.proxy.blackhole()
        time.sleep(5.0)  # the cut's length is the scenario
        cluster.proxy.forward()
    receiver.down = False
    began = time.monotonic()
    with checks.check("every callback recorded delivered"):
        wait_until(lambda: cluster.db.jobs.count_documents(
            {"job_id": {"$in": ids}, "callback.state": "delivered"}) == JOBS,
            DELIVERED_BOUND_S, "every delivery recorded", 0.5)  # fmt: skip
        checks.measured["delivered_s"] = round(time.monotonic() - began, 2)
    with checks.check("one accepted, signed delivery per job, with its final status"):
        check_deliveries(receiver, ids)
        checks.measured["attempts"] = receiver.attempts()
    with checks.check("every job still succeeded, one outcome each"):
        check_one_outcome_each(cluster, ids)
        assert cluster.db.jobs.count_documents({"job_id": {"$in": ids},
                                                "status": "succeeded"}) == JOBS  # fmt: skip
    with checks.check("alive and processing after the fault"):
        check_alive_and_processing(cluster, survivors, PROBE_BOUND_S, "cb")
    checks.verify()
