"""Event delivery: a waiting getMore is answered from inside the write; DDL events by hook."""

from __future__ import annotations

import asyncio

from bson import Timestamp

from reactor.testing.double.changestream import open_stream
from reactor.testing.double.context import ANSWERED, Backend, Context
from reactor.testing.double.ddl_events import record_rename
from reactor.testing.double.delivery import next_batch
from reactor.testing.double.replies import Doc


async def _waiting_get_more(
    backend: Backend, sent: list[Doc], max_wait_s: float = 30.0
) -> asyncio.Task[Doc]:
    """A getMore on a fresh stream of app.jobs, parked until an event comes."""
    stream = open_stream(backend.log, "app", "jobs", {}, [])
    cursor_id = backend.cursors.add(stream)
    ctx = Context(backend, "app", 1, respond_now=sent.append)
    task = asyncio.create_task(next_batch(ctx, cursor_id, stream, None, max_wait_s))
    for _ in range(10_000):  # until the getMore has subscribed: a few loop turns, no time guess
        if backend.log.listeners:
            return task
        await asyncio.sleep(0)
    raise AssertionError("the getMore never subscribed to the event log")


async def test_a_write_answers_the_waiting_get_more_before_it_returns() -> None:
    """The reply is sent inside log.record, before the writing command goes on."""
    backend = Backend("rs0", "127.0.0.1:1")
    sent: list[Doc] = []
    task = await _waiting_get_more(backend, sent)
    backend.log.record("insert", "app", "jobs", after={"_id": 1})
    assert [reply["cursor"]["nextBatch"][0]["documentKey"] for reply in sent] == [{"_id": 1}]
    assert await asyncio.wait_for(task, 10) is ANSWERED
    assert backend.log.listeners == 0


async def test_writes_elsewhere_leave_the_get_more_waiting() -> None:
    """A write to another collection does not answer the getMore; its own event then does."""
    backend = Backend("rs0", "127.0.0.1:1")
    sent: list[Doc] = []
    task = await _waiting_get_more(backend, sent)
    backend.log.record("insert", "app", "other", after={"_id": 1})
    assert sent == []
    backend.log.record("insert", "app", "jobs", after={"_id": 2})
    assert len(sent) == 1
    await asyncio.wait_for(task, 10)


async def test_an_idle_get_more_returns_an_empty_batch_and_unsubscribes() -> None:
    """When the wait runs out the reply is an empty batch through the normal path."""
    backend = Backend("rs0", "127.0.0.1:1")
    sent: list[Doc] = []
    task = await _waiting_get_more(backend, sent, max_wait_s=0.01)
    reply = await asyncio.wait_for(task, 10)
    assert reply["cursor"]["nextBatch"] == []
    assert "postBatchResumeToken" in reply["cursor"]
    assert sent == []
    assert backend.log.listeners == 0


async def test_a_stalled_stream_holds_events_until_resumed() -> None:
    """While stalled a write does not answer; notify after resume delivers it at once."""
    backend = Backend("rs0", "127.0.0.1:1")
    sent: list[Doc] = []
    task = await _waiting_get_more(backend, sent)
    backend.faults.stall()
    backend.log.record("insert", "app", "jobs", after={"_id": 1})
    assert sent == []
    backend.faults.resume()
    backend.log.notify()
    assert len(sent) == 1
    await asyncio.wait_for(task, 10)


def _collect(backend: Backend, coll: str | None, **spec: object) -> list[Doc]:
    """Everything a fresh stream opened at the start of the log would return now."""
    stream = open_stream(
        backend.log, "app", coll, {"startAtOperationTime": Timestamp(1, 0), **spec}, []
    )
    return stream.collect(backend.log, backend.lookup, None)


def test_rename_event_invalidates_the_source_stream_and_moves_the_uuid() -> None:
    """record_rename gives rename then invalidate on the source; the UUID follows the data."""
    backend = Backend("rs0", "127.0.0.1:1")
    ctx = Context(backend, "app", 1)
    backend.log.record("insert", "app", "old", after={"_id": 1})
    record_rename(ctx, "old", "app", "new", drop_target=False)
    backend.log.record("insert", "app", "new", after={"_id": 2})
    on_source = _collect(backend, "old", showExpandedEvents=True)
    assert [e["operationType"] for e in on_source] == ["insert", "rename", "invalidate"]
    assert on_source[1]["to"] == {"db": "app", "coll": "new"}
    assert on_source[1]["operationDescription"] == {"to": {"db": "app", "coll": "new"}}
    on_target = _collect(backend, "new", showExpandedEvents=True)
    assert on_target[0]["collectionUUID"] == on_source[0]["collectionUUID"]
    on_database = _collect(backend, None)
    assert [e["operationType"] for e in on_database] == ["insert", "rename", "insert"]
    assert "operationDescription" not in on_database[1]
