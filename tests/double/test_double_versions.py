"""The release the double poses as: 8.0 by default, 7.0 on request, each with its wire version."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from pymongo import AsyncMongoClient, InsertOne, MongoClient, monitoring
from pymongo.errors import InvalidOperation, OperationFailure

from reactor.testing import MongoDouble, UnknownServerVersion
from reactor.testing.fixtures import mongo_client, mongo_double, mongo_uri

__all__ = ["mongo_client", "mongo_double", "mongo_uri"]  # fixtures used by name below

Doc = dict[str, Any]


class Started(monitoring.CommandListener):
    """The names of the commands a client started."""

    def __init__(self) -> None:
        self.names: list[str] = []

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        self.names.append(event.command_name)

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


async def _versions(client: AsyncMongoClient[Doc]) -> tuple[Any, ...]:
    """What hello, buildInfo, serverStatus and getParameter say about the release."""
    hello = await client.admin.command("hello")
    build = await client.admin.command("buildInfo")
    status = await client.admin.command("serverStatus")
    fcv = await client.admin.command({"getParameter": 1, "featureCompatibilityVersion": 1})
    return (
        hello["maxWireVersion"],
        build["version"],
        build["versionArray"],
        status["version"],
        fcv["featureCompatibilityVersion"]["version"],
    )


async def test_default_double_is_mongodb_8_0_throughout(
    mongo_client: AsyncMongoClient[Doc],
) -> None:
    """hello says wire version 25, and buildInfo, serverStatus and the FCV say 8.0."""
    assert await _versions(mongo_client) == (
        25,
        "8.0.0-double",
        [8, 0, 0, 0],
        "8.0.0-double",
        "8.0",
    )


@pytest.fixture
def double_7_0() -> Iterator[MongoDouble]:
    with MongoDouble(server_version="7.0") as double:
        yield double


@pytest.fixture
def started() -> Started:
    return Started()


@pytest.fixture
async def client_7_0(
    double_7_0: MongoDouble, started: Started
) -> AsyncIterator[AsyncMongoClient[Doc]]:
    client: AsyncMongoClient[Doc] = AsyncMongoClient(
        double_7_0.uri, serverSelectionTimeoutMS=5000, event_listeners=[started]
    )
    yield client
    await client.close()


async def test_double_posing_as_7_0_reports_wire_version_21(
    client_7_0: AsyncMongoClient[Doc],
) -> None:
    """server_version="7.0": hello says wire version 21 and the rest says 7.0."""
    assert await _versions(client_7_0) == (21, "7.0.0-double", [7, 0, 0, 0], "7.0.0-double", "7.0")


async def test_7_0_has_no_bulk_write(client_7_0: AsyncMongoClient[Doc]) -> None:
    """A 7.0 double answers bulkWrite 59 CommandNotFound, as MongoDB 7.0 does; writes nothing."""
    command = {"bulkWrite": 1, "ops": [{"insert": 0, "document": {}}], "nsInfo": [{"ns": "a.b"}]}
    with pytest.raises(OperationFailure) as caught:
        await client_7_0.admin.command(command)
    assert caught.value.code == 59
    assert caught.value.details is not None
    assert caught.value.details["codeName"] == "CommandNotFound"
    assert await client_7_0.a.b.count_documents({}) == 0


async def test_client_bulk_write_on_7_0_raises_before_sending(
    client_7_0: AsyncMongoClient[Doc], started: Started
) -> None:
    """PyMongo refuses bulk_write below wire version 25 with InvalidOperation, sending nothing."""
    with pytest.raises(InvalidOperation, match=r"requires MongoDB server version 8\.0\+"):
        await client_7_0.bulk_write([InsertOne({"_id": 1}, namespace="app.jobs")])
    assert "bulkWrite" not in started.names
    assert await client_7_0.app.jobs.count_documents({}) == 0


def test_unknown_server_version_is_refused_at_construction() -> None:
    """A release the double cannot pose as raises UnknownServerVersion before anything starts."""
    with pytest.raises(UnknownServerVersion, match=r"7\.0, 8\.0, not '6\.0'"):
        MongoDouble(server_version="6.0")


def test_dev_mongo_poses_as_the_release_it_is_given() -> None:
    """`reactor dev-mongo --server-version 7.0` serves a double reporting wire version 21."""
    command = [sys.executable, "-m", "reactor.cli", "dev-mongo", "--port", "0"]
    with subprocess.Popen(
        [*command, "--server-version", "7.0"], stdout=subprocess.PIPE, text=True
    ) as process:
        try:
            assert process.stdout is not None
            uri = process.stdout.readline().strip().rpartition("REACTOR_MONGO_URI=")[2]
            with MongoClient[Doc](uri, serverSelectionTimeoutMS=5000) as client:
                assert client.admin.command("hello")["maxWireVersion"] == 21
        finally:
            process.terminate()
            process.wait(30)
