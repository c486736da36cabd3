"""Health, readiness and metrics endpoints reflect the reactor's real state."""

from __future__ import annotations

import socket
from typing import Any

import anyio
import httpx
from pymongo.asynchronous.database import AsyncDatabase

from reactor.client import new_job, wait_for_results
from reactor.config import Settings
from reactor.registry import Registry
from reactor.web.health import build_app
from tests.integration.reactors import running

Db = AsyncDatabase[dict[str, Any]]


def _client(reactor: Any) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=build_app(reactor.probes()))
    return httpx.AsyncClient(transport=transport, base_url="http://reactor")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_endpoints_are_served_on_the_configured_port(
    settings: Settings, registry: Registry
) -> None:
    """The reactor listens on http_port and answers /healthz and /readyz."""
    port = _free_port()
    async with (
        running(settings, registry, http_host="127.0.0.1", http_port=port),
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http,
    ):
        assert (await http.get("/healthz")).json() == {"status": "alive", "reasons": []}
        ready = await http.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready", "reasons": []}


async def test_metrics_move_as_jobs_run(settings: Settings, db: Db, registry: Registry) -> None:
    """/metrics counts started and finished jobs by command and status."""
    async with running(settings, registry) as reactor, _client(reactor) as http:
        await db.jobs.insert_many(
            [new_job("echo", {}, "m1"), new_job("echo", {}, "m2"), new_job("explode", {}, "m3")]
        )
        await wait_for_results(db, ["m1", "m2", "m3"], timeout_s=20)
        # A result is visible a moment before its job's final status is written and its slot
        # freed: read the metrics once nothing is in flight any more.
        idle = "reactor_jobs_in_flight 0.0"
        with anyio.fail_after(20):
            while idle not in (text := (await http.get("/metrics")).text):  # noqa: ASYNC110
                await anyio.sleep(0.05)  # the endpoint under test has no event to wait on
    assert 'reactor_jobs_started_total{command="echo"} 2.0' in text
    assert 'reactor_jobs_finished_total{command="echo",status="succeeded"} 2.0' in text
    assert 'reactor_jobs_finished_total{command="explode",status="failed"} 1.0' in text
    assert 'reactor_job_duration_seconds_count{command="echo"} 2.0' in text
    assert "reactor_jobs_queued 0.0" in text
    assert "reactor_resume_token_age_seconds" in text


async def test_readiness_fails_when_the_stream_stalls_and_recovers(
    settings: Settings, double: Any, registry: Registry
) -> None:
    """/readyz turns 503 naming the stalled stream, and 200 again once it advances."""
    async with (
        running(settings, registry, ready_stall_s=1.0) as reactor,
        _client(reactor) as http,
    ):
        assert (await http.get("/readyz")).status_code == 200
        double.stall_change_streams()
        try:
            await anyio.sleep(1.5)  # past ready_stall_s: the behaviour under test is time-based
            stalled = await http.get("/readyz")
        finally:
            double.resume_change_streams()
        with anyio.fail_after(10):
            # polling is what a readiness probe does; there is no event to wait on
            while (await http.get("/readyz")).status_code != 200:  # noqa: ASYNC110
                await anyio.sleep(0.1)
    assert stalled.status_code == 503
    assert "change stream has not advanced" in stalled.json()["reasons"][0]
