"""Fixtures for the integration suite: one suite, parametrized over the backends."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from reactor.config import Settings, load_settings
from reactor.registry import Registry
from tests.integration import jobs_lib
from tests.integration.backends import (
    Backend,
    docker_unavailable_reason,
    double_backend,
    replica_set_backend,
)
from tests.integration.jobs_lib import Tally


@pytest.fixture(scope="session", params=["double", "double-twin", "replica-set"])
def backend(request: pytest.FixtureRequest) -> Iterator[Backend]:
    """A MongoDB for the session's cases on it: the double always; a second, separate double
    standing in for the replica set, so that every case runs twice in one session and anything
    the first leg leaves behind in this process shows on the second; a replica set where Docker
    runs."""
    if request.param != "replica-set":
        with double_backend(request.param) as found:
            yield found
        return
    reason = docker_unavailable_reason()
    if reason:
        pytest.skip(reason)
    with replica_set_backend() as found:
        yield found


@pytest.fixture
def double(backend: Backend) -> Any:
    """The double's fault hooks; tests that need them skip on a real server."""
    if backend.double is None:
        pytest.skip("fault injection exists only in the double")
    return backend.double


@pytest.fixture
def settings(backend: Backend, tmp_path: Path) -> Settings:
    """Settings for a fresh database per test, with short leases and no HTTP port."""
    return load_settings(
        mongo_uri=backend.uri,
        db=f"t_{uuid.uuid4().hex[:12]}",
        jobs_root=tmp_path / "jobs",
        http_port=0,
        lease_s=3,
        connect_timeout_s=5,
        cpu_workers=2,
        job_timeout_s=30,
        log_format="json",
        worker_name=f"test-{uuid.uuid4().hex[:6]}",
    )


@pytest.fixture
async def db(settings: Settings) -> AsyncIterator[AsyncDatabase[dict[str, Any]]]:
    """A client's view of the test database (dropped afterwards)."""
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(settings.mongo_uri, tz_aware=True)
    try:
        yield client[settings.db]
    finally:
        await client.drop_database(settings.db)
        await client.close()


@pytest.fixture
def tally() -> Tally:
    """What this test's handlers did: fresh per test, so no count carries over to the next test
    or to the same test on the next backend."""
    return Tally()


@pytest.fixture
def registry(tally: Tally) -> Registry:
    """The suite's handlers, the counting and gated ones noting into this test's tally."""
    return jobs_lib.registry(tally)
