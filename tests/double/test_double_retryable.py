"""Retryable writes: a retry with the same lsid and txnNumber returns the first outcome."""

from __future__ import annotations

from typing import Any

import pytest
from bson import Int64
from pymongo import AsyncMongoClient
from pymongo.errors import OperationFailure

from reactor.testing.fixtures import mongo_client, mongo_double, mongo_uri

__all__ = ["mongo_client", "mongo_double", "mongo_uri"]  # fixtures used by name below

Doc = dict[str, Any]
# Explicit txnNumbers above any the driver used: sessions are pooled, and a session that ran the
# setup's implicit writes already recorded txnNumbers 1, 2, ...
BASE = 1000


async def test_retried_insert_returns_the_recorded_outcome(
    mongo_client: AsyncMongoClient[Doc],
) -> None:
    """The same insert sent twice in one session and txnNumber answers n: 1 both times."""
    command = {"insert": "jobs", "documents": [{"_id": 1}], "txnNumber": Int64(BASE + 1)}
    async with mongo_client.start_session() as session:
        first = await mongo_client.app.command(command, session=session)
        again = await mongo_client.app.command(command, session=session)
    assert (first["n"], again["n"]) == (1, 1)
    assert "writeErrors" not in again
    assert await mongo_client.app.jobs.count_documents({}) == 1


async def test_retried_claim_does_not_claim_a_second_job(
    mongo_client: AsyncMongoClient[Doc],
) -> None:
    """A retried findAndModify claim returns the job it claimed first and claims no other."""
    jobs = mongo_client.app.jobs
    await jobs.insert_many([{"_id": i, "status": "queued"} for i in range(3)])
    claim = {
        "findAndModify": "jobs",
        "query": {"status": "queued"},
        "sort": {"_id": 1},
        "update": {"$set": {"status": "running"}},
        "txnNumber": Int64(BASE + 7),
    }
    async with mongo_client.start_session() as session:
        first = await mongo_client.app.command(claim, session=session)
        again = await mongo_client.app.command(claim, session=session)
    assert first["value"] == again["value"] == {"_id": 0, "status": "queued"}
    assert await jobs.count_documents({"status": "running"}) == 1


async def test_retried_update_and_delete_are_not_applied_twice(
    mongo_client: AsyncMongoClient[Doc],
) -> None:
    """A retried $inc update and a retried delete run once and answer their first counts."""
    jobs = mongo_client.app.jobs
    await jobs.insert_many([{"_id": 1, "n": 0}, {"_id": 2}])
    update = {"update": "jobs", "updates": [{"q": {"_id": 1}, "u": {"$inc": {"n": 1}}}]}
    delete = {"delete": "jobs", "deletes": [{"q": {}, "limit": 1}]}
    async with mongo_client.start_session() as session:
        for number, command in ((1, update), (2, delete)):
            first = await mongo_client.app.command(
                {**command, "txnNumber": Int64(BASE + number)}, session=session
            )
            again = await mongo_client.app.command(
                {**command, "txnNumber": Int64(BASE + number)}, session=session
            )
            assert first["n"] == again["n"] == 1
    assert await jobs.find({}).to_list() == [{"_id": 2}]


async def test_an_older_txn_number_is_refused(mongo_client: AsyncMongoClient[Doc]) -> None:
    """A write with a txnNumber below the session's latest answers 225 TransactionTooOld."""
    async with mongo_client.start_session() as session:
        for number in (5, 6):
            await mongo_client.app.command(
                {
                    "insert": "jobs",
                    "documents": [{"_id": number}],
                    "txnNumber": Int64(BASE + number),
                },
                session=session,
            )
        with pytest.raises(OperationFailure) as caught:
            await mongo_client.app.command(
                {"insert": "jobs", "documents": [{"_id": 9}], "txnNumber": Int64(BASE + 5)},
                session=session,
            )
    assert caught.value.code == 225
    assert await mongo_client.app.jobs.count_documents({}) == 2


async def test_writes_without_txn_number_run_every_time(
    mongo_client: AsyncMongoClient[Doc],
) -> None:
    """Only retryable writes are recorded: a plain $inc sent twice applies twice."""
    jobs = mongo_client.app.jobs
    await jobs.insert_one({"_id": 1, "n": 0})
    command = {"update": "jobs", "updates": [{"q": {"_id": 1}, "u": {"$inc": {"n": 1}}}]}
    async with mongo_client.start_session() as session:
        await mongo_client.app.command(command, session=session)
        await mongo_client.app.command(command, session=session)
    assert await jobs.find_one({"_id": 1}) == {"_id": 1, "n": 2}
