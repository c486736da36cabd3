"""Callbacks through real reactors to a local HTTP server on loopback: signed, retried with
back-off, at least once across a restart, and never a change to the job's status."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import anyio
import pytest
from pymongo.asynchronous.database import AsyncDatabase

from reactor.callbacks.policy import verify
from reactor.client import new_job, wait_for_result
from reactor.config import Settings
from reactor.workflows import client
from tests.integration import workflow_handlers as wh
from tests.integration.jobs_lib import Tally
from tests.integration.lifecycle_lib import wait_for_doc
from tests.integration.reactors import running

Db = AsyncDatabase[dict[str, Any]]
SECRET = "s3cret"
WAIT_S = 60.0


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """A loopback HTTP server answering each POST with the next status of ``answers``
    (then 200), recording what it received."""

    answers: list[int] = field(default_factory=list)
    received: list[Received] = field(default_factory=list)
    arrived: threading.Condition = field(default_factory=threading.Condition)
    url: str = ""

    def post(self, headers: dict[str, str], body: bytes) -> int:
        with self.arrived:
            self.received.append(Received(headers, body))
            self.arrived.notify_all()
            return self.answers.pop(0) if self.answers else 200

    async def wait_for(self, count: int, timeout_s: float = WAIT_S) -> list[Received]:
        def enough() -> bool:
            with self.arrived:
                return self.arrived.wait_for(lambda: len(self.received) >= count, timeout_s)

        assert await anyio.to_thread.run_sync(enough), f"{len(self.received)} of {count} arrived"
        return self.received


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    found = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            status = found.post(dict(self.headers.items()), body)
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


def signed(settings: Settings, **overrides: Any) -> Settings:
    return settings.model_copy(
        update={"callback_secret": SECRET, "callback_backoff_s": 0.2, **overrides}
    )


def delivered(doc: dict[str, Any]) -> bool:
    return (doc.get("callback") or {}).get("state") in ("delivered", "failed", "refused")


async def test_a_job_callback_arrives_signed_with_the_result(
    settings: Settings, db: Db, receiver: Receiver, tally: Tally
) -> None:
    """The result document is POSTed with a delivery id, a timestamp and an HMAC-SHA256
    signature that verifies; the delivery is recorded and the job's status is untouched."""
    async with running(signed(settings), wh.registry(tally)):
        await db.jobs.insert_one(
            {**new_job("wf_count", {"n": 1}, "hooked"), "callback_url": receiver.url}
        )
        (got,) = await receiver.wait_for(1)
        job = await wait_for_doc(db.jobs, "hooked", delivered, timeout_s=WAIT_S)
    headers = {k.lower(): v for k, v in got.headers.items()}
    assert verify(
        SECRET.encode(), headers["x-reactor-timestamp"], got.body, headers["x-reactor-signature"]
    )
    assert not verify(
        b"other", headers["x-reactor-timestamp"], got.body, headers["x-reactor-signature"]
    )
    assert headers["x-reactor-delivery"] == "hooked:1"
    assert headers["x-reactor-kind"] == "job"
    body = json.loads(got.body)
    assert (body["job_id"], body["status"], body["result"]) == (
        "hooked",
        "succeeded",
        {"args": {"n": 1}},
    )
    assert job["status"] == "succeeded"
    callback = job["callback"]
    assert (callback["state"], callback["attempts"], callback["last_status"]) == (
        "delivered",
        1,
        200,
    )
    assert callback["delivered_at"] is not None


async def test_a_server_that_fails_twice_gets_the_callback_on_the_third_try(
    settings: Settings, db: Db, receiver: Receiver, tally: Tally
) -> None:
    """500, 500, then 200: three attempts with the same delivery id; recorded as delivered
    after three attempts."""
    receiver.answers = [500, 500]
    async with running(signed(settings), wh.registry(tally)):
        await db.jobs.insert_one({**new_job("wf_count", {}, "third"), "callback_url": receiver.url})
        got = await receiver.wait_for(3)
        job = await wait_for_doc(db.jobs, "third", delivered, timeout_s=WAIT_S)
    ids = {r.headers["X-Reactor-Delivery"] for r in got}
    assert ids == {"third:1"}
    assert len(got) == 3
    assert (job["callback"]["state"], job["callback"]["attempts"]) == ("delivered", 3)


async def test_a_reactor_restarted_between_attempts_still_delivers(
    settings: Settings, db: Db, receiver: Receiver, tally: Tally
) -> None:
    """The first attempt gets 500 and its reactor stops; a new reactor (another owner) finds the
    pending delivery at startup and delivers it."""
    receiver.answers = [500]
    slow = signed(settings, callback_backoff_s=2.0)
    async with running(slow, wh.registry(tally)):
        await db.jobs.insert_one(
            {**new_job("wf_count", {}, "restart"), "callback_url": receiver.url}
        )
        await receiver.wait_for(1)
        await wait_for_doc(
            db.jobs,
            "restart",
            lambda d: (d.get("callback") or {}).get("last_status") == 500,
            timeout_s=WAIT_S,
        )
    assert len(receiver.received) == 1
    async with running(slow.model_copy(update={"worker_name": "second"}), wh.registry(tally)):
        await receiver.wait_for(2)
        job = await wait_for_doc(db.jobs, "restart", delivered, timeout_s=WAIT_S)
    assert job["callback"]["state"] == "delivered"
    assert job["callback"]["attempts"] == 2
    assert job["callback"]["owner"].startswith("second/")
    assert job["status"] == "succeeded"


async def test_a_workflow_callback_is_sent_when_it_finishes(
    settings: Settings, db: Db, receiver: Receiver, tally: Tally
) -> None:
    """A workflow's callback_url gets its outcome once it has finished."""
    steps = [{"name": "a", "command": "wf_count", "args": {"n": 2}}]
    async with running(signed(settings), wh.registry(tally)):
        await client.submit(
            db, {"workflow_id": "wfh", "steps": steps, "callback_url": receiver.url}
        )
        (got,) = await receiver.wait_for(1)
    body = json.loads(got.body)
    assert got.headers["X-Reactor-Kind"] == "workflow"
    assert got.headers["X-Reactor-Delivery"] == "workflow:wfh:1"
    assert (body["workflow_id"], body["status"], body["result"]) == (
        "wfh",
        "succeeded",
        {"args": {"n": 2}},
    )


async def test_a_callback_to_a_host_not_allowed_is_refused_and_never_sent(
    settings: Settings, db: Db, receiver: Receiver, tally: Tally
) -> None:
    """With REACTOR_CALLBACK_ALLOWED_HOSTS naming another host, the delivery ends refused
    with the reason, nothing is sent, and the job keeps its status."""
    only = signed(settings, callback_allowed_hosts="hooks.example.com")
    async with running(only, wh.registry(tally)):
        await db.jobs.insert_one(
            {**new_job("wf_count", {}, "fenced"), "callback_url": receiver.url}
        )
        await wait_for_result(db, "fenced", timeout_s=WAIT_S)
        job = await wait_for_doc(db.jobs, "fenced", delivered, timeout_s=WAIT_S)
    assert job["callback"]["state"] == "refused"
    assert "not in REACTOR_CALLBACK_ALLOWED_HOSTS" in job["callback"]["last_error"]
    assert receiver.received == []
    assert job["status"] == "succeeded"
