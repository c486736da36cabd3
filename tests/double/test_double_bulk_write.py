"""MongoDB 8.0's client-level bulkWrite through PyMongo's AsyncMongoClient.bulk_write."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from pymongo import (
    AsyncMongoClient,
    DeleteMany,
    DeleteOne,
    InsertOne,
    ReplaceOne,
    UpdateMany,
    UpdateOne,
    WriteConcern,
    monitoring,
)
from pymongo.asynchronous.change_stream import AsyncChangeStream
from pymongo.errors import ClientBulkWriteException

from reactor.testing import MongoDouble
from reactor.testing.fixtures import mongo_client, mongo_double, mongo_uri

__all__ = ["mongo_client", "mongo_double", "mongo_uri"]  # fixtures used by name below

Doc = dict[str, Any]
# A change event's fields that differ between any two writes, however alike.
_VOLATILE = ("_id", "clusterTime", "wallTime", "ns")


class Started(monitoring.CommandListener):
    """The names of the commands a client started, in order."""

    def __init__(self) -> None:
        self.names: list[str] = []

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        self.names.append(event.command_name)

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


def _models(db: str) -> list[Any]:
    """One of each write model, over ``<db>.jobs`` and ``<db>.results``."""
    jobs, results = f"{db}.jobs", f"{db}.results"
    return [
        InsertOne({"_id": "j1", "status": "queued"}, namespace=jobs),
        InsertOne({"_id": "j2", "status": "queued"}, namespace=jobs),
        InsertOne({"_id": "r0", "job_id": "j0"}, namespace=results),
        UpdateOne({"_id": "j1"}, {"$set": {"status": "done"}}, namespace=jobs),
        UpdateMany({"status": "queued"}, {"$set": {"seen": True}}, namespace=jobs),
        ReplaceOne({"job_id": "j1"}, {"job_id": "j1", "value": 1}, upsert=True, namespace=results),
        DeleteOne({"_id": "r0"}, namespace=results),
        DeleteMany({"status": "done"}, namespace=jobs),
    ]


async def test_one_command_writes_to_two_collections(mongo_client: AsyncMongoClient[Doc]) -> None:
    """Every kind of model over two collections runs in order and is counted as MongoDB counts."""
    result = await mongo_client.bulk_write(_models("app"))
    counts = (result.inserted_count, result.matched_count, result.modified_count)
    assert counts == (3, 2, 2)
    assert (result.upserted_count, result.deleted_count) == (1, 2)
    assert await mongo_client.app.jobs.find().to_list() == [
        {"_id": "j2", "status": "queued", "seen": True}
    ]
    results = await mongo_client.app.results.find({}, {"_id": 0}).to_list()
    assert results == [{"job_id": "j1", "value": 1}]


async def test_verbose_results_describe_each_model(mongo_client: AsyncMongoClient[Doc]) -> None:
    """verbose_results gives each model's own result, keyed by its index in the request."""
    result = await mongo_client.bulk_write(_models("app"), verbose_results=True)
    assert {i: r.inserted_id for i, r in result.insert_results.items()} == {
        0: "j1",
        1: "j2",
        2: "r0",
    }
    updates = {i: (r.matched_count, r.modified_count) for i, r in result.update_results.items()}
    assert updates == {3: (1, 1), 4: (1, 1), 5: (1, 0)}  # an upsert's n is 1 (PyMongo's matched)
    upserted = result.update_results[5]
    assert upserted.did_upsert
    assert await mongo_client.app.results.find_one({"_id": upserted.upserted_id}) is not None
    assert {i: r.deleted_count for i, r in result.delete_results.items()} == {6: 1, 7: 1}


async def test_ordered_bulk_write_stops_at_the_first_error(
    mongo_client: AsyncMongoClient[Doc],
) -> None:
    """An ordered request fails at a duplicate key (with its key) and runs nothing after it."""
    await mongo_client.app.results.create_index("job_id", unique=True)
    models = [
        InsertOne({"job_id": "j1"}, namespace="app.results"),
        InsertOne({"job_id": "j1"}, namespace="app.results"),
        InsertOne({"_id": "after"}, namespace="app.jobs"),
    ]
    with pytest.raises(ClientBulkWriteException) as caught:
        await mongo_client.bulk_write(models)
    (error,) = caught.value.write_errors or []
    assert (error["idx"], error["code"]) == (1, 11000)
    assert (error["keyPattern"], error["keyValue"]) == ({"job_id": 1}, {"job_id": "j1"})
    assert caught.value.partial_result is not None
    assert caught.value.partial_result.inserted_count == 1
    assert await mongo_client.app.jobs.count_documents({}) == 0


async def test_unordered_bulk_write_runs_past_errors(mongo_client: AsyncMongoClient[Doc]) -> None:
    """An unordered request reports each failed model and runs every other one."""
    await mongo_client.app.jobs.insert_one({"_id": "taken"})
    models = [
        InsertOne({"_id": "taken"}, namespace="app.jobs"),
        InsertOne({"_id": "free"}, namespace="app.jobs"),
        UpdateOne({"_id": "free"}, {"$inc": {"n": "x"}}, namespace="app.jobs"),
        InsertOne({"_id": "r1"}, namespace="app.results"),
    ]
    with pytest.raises(ClientBulkWriteException) as caught:
        await mongo_client.bulk_write(models, ordered=False)
    errors = caught.value.write_errors or []
    assert [(e["idx"], e["code"]) for e in errors] == [(0, 11000), (2, 14)]
    assert caught.value.partial_result is not None
    assert caught.value.partial_result.inserted_count == 2
    assert await mongo_client.app.results.count_documents({}) == 1


async def _drain(stream: AsyncChangeStream[Doc], count: int) -> list[Doc]:
    """The next ``count`` events, without the fields that differ between any two writes."""
    events = [await stream.next() for _ in range(count)]
    return [{k: v for k, v in event.items() if k not in _VOLATILE} for event in events]


async def _bulk_and_singles(client: AsyncMongoClient[Doc]) -> None:
    """The models of ``_models`` as one bulkWrite on ``bulk``, as single commands on ``single``."""
    await client.bulk_write(_models("bulk"))
    jobs, results = client.single.jobs, client.single.results
    await jobs.insert_one({"_id": "j1", "status": "queued"})
    await jobs.insert_one({"_id": "j2", "status": "queued"})
    await results.insert_one({"_id": "r0", "job_id": "j0"})
    await jobs.update_one({"_id": "j1"}, {"$set": {"status": "done"}})
    await jobs.update_many({"status": "queued"}, {"$set": {"seen": True}})
    await results.replace_one({"job_id": "j1"}, {"job_id": "j1", "value": 1}, upsert=True)
    await results.delete_one({"_id": "r0"})
    await jobs.delete_many({"status": "done"})


async def test_change_events_are_those_of_single_collection_writes(
    mongo_client: AsyncMongoClient[Doc],
) -> None:
    """A stream on each collection sees the bulk write's events as the single commands make them."""
    seen: dict[str, list[Doc]] = {}
    async with (
        await mongo_client.bulk.jobs.watch() as bulk_jobs,
        await mongo_client.bulk.results.watch() as bulk_results,
        await mongo_client.single.jobs.watch() as single_jobs,
        await mongo_client.single.results.watch() as single_results,
    ):
        await _bulk_and_singles(mongo_client)
        for name, stream, count in (
            ("bulk_jobs", bulk_jobs, 5),
            ("bulk_results", bulk_results, 3),
            ("single_jobs", single_jobs, 5),
            ("single_results", single_results, 3),
        ):
            seen[name] = await _drain(stream, count)
    assert [e["operationType"] for e in seen["bulk_jobs"]] == [
        "insert",
        "insert",
        "update",
        "update",
        "delete",
    ]
    single_upsert = seen["single_results"][1]  # its _id is generated: take the bulk one's
    upserted_id = seen["bulk_results"][1]["documentKey"]["_id"]
    single_upsert["documentKey"]["_id"] = single_upsert["fullDocument"]["_id"] = upserted_id
    assert seen["bulk_jobs"] == seen["single_jobs"]
    assert seen["bulk_results"] == seen["single_results"]


async def test_retryable_error_is_retried_without_writing_twice(
    mongo_client: AsyncMongoClient[Doc], mongo_double: MongoDouble
) -> None:
    """A bulkWrite failing with RetryableWriteError is sent again and writes each model once."""
    mongo_double.fail_next(1, code=6, labels=["RetryableWriteError"], commands=["bulkWrite"])
    models = [InsertOne({"_id": i}, namespace="app.jobs") for i in range(3)]
    result = await mongo_client.bulk_write(models)
    assert result.inserted_count == 3
    assert await mongo_client.app.jobs.count_documents({}) == 3


async def test_unsatisfiable_write_concern_is_reported_after_the_writes(
    mongo_client: AsyncMongoClient[Doc],
) -> None:
    """w: 2 on the one-member set applies the writes and reports writeConcernError 100."""
    models = [InsertOne({"_id": 1}, namespace="app.jobs")]
    with pytest.raises(ClientBulkWriteException) as caught:
        await mongo_client.bulk_write(models, write_concern=WriteConcern(w=2))
    assert [e["code"] for e in caught.value.write_concern_errors or []] == [100]
    assert await mongo_client.app.jobs.count_documents({}) == 1


async def test_unacknowledged_bulk_write_is_applied(mongo_client: AsyncMongoClient[Doc]) -> None:
    """A w: 0 bulk write gets no reply, and its writes reach a change stream."""
    async with await mongo_client.app.jobs.watch() as stream:
        result = await mongo_client.bulk_write(
            [InsertOne({"_id": "w0"}, namespace="app.jobs")],
            ordered=False,
            write_concern=WriteConcern(w=0),
        )
        event = await stream.next()
    assert not result.acknowledged
    assert event["documentKey"] == {"_id": "w0"}


@pytest.fixture
def started() -> Started:
    return Started()


@pytest.fixture
async def watched_client(mongo_uri: str, started: Started) -> AsyncIterator[AsyncMongoClient[Doc]]:
    """A client whose started commands ``started`` records."""
    client: AsyncMongoClient[Doc] = AsyncMongoClient(
        mongo_uri, serverSelectionTimeoutMS=5000, event_listeners=[started]
    )
    yield client
    await client.close()


async def test_results_past_16_mib_arrive_through_get_more(
    watched_client: AsyncMongoClient[Doc], started: Started
) -> None:
    """Two upserts with 8 MiB _ids: the second result does not fit the reply and needs getMore."""
    half = 8 * 1024 * 1024
    models = [
        UpdateOne({"_id": c * half}, {"$set": {"x": 1}}, upsert=True, namespace="app.big")
        for c in "ab"
    ]
    result = await watched_client.bulk_write(models, verbose_results=True)
    assert result.upserted_count == 2
    assert len(result.update_results) == 2
    assert started.names.count("getMore") == 1
