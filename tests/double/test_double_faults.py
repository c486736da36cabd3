"""Fault injection on the double: dropped connections, injected errors, stalls, lost history."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from pymongo import AsyncMongoClient, monitoring
from pymongo.errors import OperationFailure, PyMongoError

from reactor.testing import MongoDouble
from reactor.testing.fixtures import mongo_double, mongo_uri

__all__ = ["mongo_double", "mongo_uri"]  # fixtures used by name below

Doc = dict[str, Any]


class Commands(monitoring.CommandListener):
    """Records started commands and lets a test wait for the next one of a given name."""

    def __init__(self) -> None:
        self.seen: list[monitoring.CommandStartedEvent] = []
        self._waiters: dict[str, asyncio.Event] = {}

    def next_start(self, name: str) -> asyncio.Event:
        """An event set when the next ``name`` command starts (call before triggering it)."""
        self._waiters[name] = asyncio.Event()
        return self._waiters[name]

    def named(self, name: str) -> list[Doc]:
        return [dict(event.command) for event in self.seen if event.command_name == name]

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        self.seen.append(event)
        waiter = self._waiters.pop(event.command_name, None)
        if waiter is not None:
            waiter.set()

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


@pytest.fixture
def commands() -> Commands:
    return Commands()


@pytest.fixture
async def client(mongo_uri: str, commands: Commands) -> AsyncIterator[AsyncMongoClient[Doc]]:
    client: AsyncMongoClient[Doc] = AsyncMongoClient(
        mongo_uri, serverSelectionTimeoutMS=5000, event_listeners=[commands]
    )
    yield client
    await client.close()


@pytest.fixture
async def writer(mongo_uri: str) -> AsyncIterator[AsyncMongoClient[Doc]]:
    """A second client, so writes do not share the watcher's connections."""
    client: AsyncMongoClient[Doc] = AsyncMongoClient(mongo_uri, serverSelectionTimeoutMS=5000)
    yield client
    await client.close()


async def test_dropped_connections_resume_the_stream(
    client: AsyncMongoClient[Doc],
    writer: AsyncMongoClient[Doc],
    commands: Commands,
    mongo_double: MongoDouble,
) -> None:
    """Dropping connections under a waiting getMore makes PyMongo resume and miss nothing."""
    async with await client.app.jobs.watch(max_await_time_ms=500) as stream:
        get_more = commands.next_start("getMore")
        pending = asyncio.create_task(stream.next())
        await get_more.wait()
        mongo_double.drop_connections()
        await writer.app.jobs.insert_one({"_id": "after-drop"})
        event = await asyncio.wait_for(pending, 10)
    assert event["documentKey"] == {"_id": "after-drop"}
    aggregates = commands.named("aggregate")
    assert len(aggregates) == 2
    assert "resumeAfter" in aggregates[1]["pipeline"][0]["$changeStream"]


async def test_fail_next_surfaces_code_and_labels(
    client: AsyncMongoClient[Doc], mongo_double: MongoDouble
) -> None:
    """An injected failure reaches the caller as OperationFailure with its code and labels."""
    mongo_double.fail_next(1, code=2, labels=["SomeLabel"], commands=["find"], message="boom")
    with pytest.raises(OperationFailure) as caught:
        await client.app.jobs.find_one({})
    assert caught.value.code == 2
    assert caught.value.has_error_label("SomeLabel")
    assert "boom" in str(caught.value)
    assert await client.app.jobs.find_one({}) is None


async def test_retryable_write_error_is_retried(
    client: AsyncMongoClient[Doc], commands: Commands, mongo_double: MongoDouble
) -> None:
    """A write failing once with RetryableWriteError is retried by PyMongo and succeeds."""
    mongo_double.fail_next(1, code=6, labels=["RetryableWriteError"], commands=["insert"])
    await client.app.jobs.insert_one({"_id": 1})
    assert len(commands.named("insert")) == 2
    assert await client.app.jobs.count_documents({}) == 1


async def test_fail_next_counts_only_named_commands(
    client: AsyncMongoClient[Doc], mongo_double: MongoDouble
) -> None:
    """A failure limited to one command name leaves other commands alone until it is used up."""
    mongo_double.fail_next(2, code=8, commands=["count"])
    await client.app.jobs.insert_one({"_id": 1})
    for _ in range(2):
        with pytest.raises(OperationFailure):
            await client.app.jobs.estimated_document_count()
    assert await client.app.jobs.estimated_document_count() == 1


async def test_stalled_streams_answer_after_resume(
    client: AsyncMongoClient[Doc],
    writer: AsyncMongoClient[Doc],
    commands: Commands,
    mongo_double: MongoDouble,
) -> None:
    """While stalled, a getMore does not answer even with events waiting; resuming releases it."""
    async with await client.app.jobs.watch(max_await_time_ms=50) as stream:
        mongo_double.stall_change_streams()
        await writer.app.jobs.insert_one({"_id": "held"})
        get_more = commands.next_start("getMore")
        pending = asyncio.create_task(stream.next())
        await get_more.wait()
        done, _ = await asyncio.wait({pending}, timeout=0.3)
        assert not done
        mongo_double.resume_change_streams()
        event = await asyncio.wait_for(pending, 5)
    assert event["documentKey"] == {"_id": "held"}


async def test_stop_releases_a_stalled_stream() -> None:
    """stop() returns promptly even while a change-stream getMore is stalled."""
    double = MongoDouble().start()
    commands = Commands()
    client: AsyncMongoClient[Doc] = AsyncMongoClient(
        double.uri, serverSelectionTimeoutMS=2000, event_listeners=[commands]
    )
    stream = await client.app.jobs.watch(max_await_time_ms=50)
    double.stall_change_streams()
    get_more = commands.next_start("getMore")
    pending = asyncio.create_task(stream.try_next())
    await get_more.wait()
    await asyncio.wait_for(asyncio.to_thread(double.stop), 5)
    with pytest.raises(PyMongoError):  # the stream's resume finds no server any more
        await asyncio.wait_for(pending, 10)
    await client.close()
