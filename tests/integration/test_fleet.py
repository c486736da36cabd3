"""The fleet: running reactors heartbeat their entry in reactor_workers; `reactor workers` and
GET /api/workers list them; one killed with SIGKILL leaves the listings within its TTL."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pymongo
from pymongo.asynchronous.database import AsyncDatabase

from reactor import __version__, fleet, model
from reactor.driver import Calls
from tests.integration.backends import Backend
from tests.integration.procs import free_port, reactor_process, until

TOKEN = "fleet-test-token"
TTL_S = 3.0
BEAT_S = 0.5


def api_names(port: int) -> list[str] | None:
    """The names GET /api/workers lists, or None while the reactor does not answer."""
    try:
        response = httpx.get(f"http://127.0.0.1:{port}/api/workers",
                             headers={"Authorization": f"Bearer {TOKEN}"}, timeout=2)  # fmt: skip
    except httpx.HTTPError:
        return None
    if response.status_code != 200:
        return None
    return sorted(worker["name"] for worker in response.json()["workers"])


def cli_workers(backend: Backend, db: str) -> str:
    command = [sys.executable, "-m", "reactor.cli", "workers", "--mongo-uri", backend.uri,
               "--db", db, "--fleet-ttl-s", str(TTL_S)]  # fmt: skip
    return subprocess.run(command, capture_output=True, text=True, check=True, timeout=60).stdout


def test_two_reactors_are_listed_and_a_killed_one_leaves_within_its_ttl(
    backend: Backend, tmp_path: Path
) -> None:
    """Both reactors appear in the API and the CLI; after SIGKILL one is gone within fleet_ttl_s
    although its document outlives it (the TTL monitor runs once a minute); a clean stop
    removes its entry at once."""
    db_name = f"f_{uuid.uuid4().hex[:10]}"
    port = free_port()
    client: pymongo.MongoClient[dict[str, Any]] = pymongo.MongoClient(backend.uri)
    workers = client[db_name][model.WORKERS_COLLECTION]
    fleet_env = {"fleet_heartbeat_s": BEAT_S, "fleet_ttl_s": TTL_S}
    try:
        with (
            reactor_process(backend, db_name, "left", tmp_path, api_token=TOKEN, http_port=port,
                            http_host="127.0.0.1", **fleet_env),
            reactor_process(backend, db_name, "right", tmp_path, **fleet_env) as right,
        ):  # fmt: skip
            until(lambda: api_names(port) == ["left", "right"], 60, "both reactors listed")
            table = cli_workers(backend, db_name)
            assert "left" in table
            assert "right" in table
            right.kill()
            right.wait()
            killed_at = time.monotonic()
            until(lambda: api_names(port) == ["left"], TTL_S + 5, "the killed one gone")
            assert time.monotonic() - killed_at <= TTL_S + 2
            assert "right" not in cli_workers(backend, db_name)
            if backend.double is not None:  # its document is still there: the readers filter
                assert workers.count_documents({"name": "right"}) == 1
        assert workers.count_documents({"name": "left"}) == 0  # SIGTERM: it left
        index = workers.index_information()[fleet.queries.WORKER_INDEXES_NAME]
        assert index["expireAfterSeconds"] == TTL_S
    finally:
        client.drop_database(db_name)
        client.close()


async def test_an_entry_says_who_the_reactor_is_and_keeps_an_hour_of_samples(
    db: AsyncDatabase[dict[str, Any]],
) -> None:
    """The entry names host, pid, version and handlers; samples carry CPU, RSS, in-flight and
    queue length; only an hour's worth are kept; readers skip an entry older than the TTL."""

    async def queued() -> int:
        return 7

    member = fleet.member_of("owner-1", "w1", ["echo"], max_jobs=4, cpu_workers=2)
    beat = fleet.Heartbeat(db, member, Calls(), in_flight=lambda: 2, queued=queued,
                           period_s=1200, ttl_s=3600)  # fmt: skip
    for _ in range(5):
        await beat.beat()
    entry = await db[model.WORKERS_COLLECTION].find_one({"_id": "owner-1"})
    assert entry is not None
    assert (entry["host"], entry["pid"], entry["version"]) == (socket.gethostname(), os.getpid(),
                                                               __version__)  # fmt: skip
    assert (entry["handlers"], entry["in_flight"], entry["max_jobs"]) == (["echo"], 2, 4)
    assert len(entry["samples"]) == 3  # an hour at one sample per 1,200 s
    assert set(entry["samples"][-1]) == {"at", "cpu_percent", "rss_mb", "in_flight", "queued"}
    assert entry["samples"][-1]["queued"] == 7
    assert entry["samples"][-1]["rss_mb"] > 0
    assert [m["name"] for m in await fleet.members(db, 3600)] == ["w1"]
    later = datetime.now(UTC) + timedelta(hours=2)
    assert await fleet.members(db, 3600, now=later) == []
