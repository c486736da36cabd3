"""Change-stream errors as a MongoDB 8 server sends them: codes, and the labels PyMongo acts on."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from pymongo import AsyncMongoClient
from pymongo.errors import OperationFailure, PyMongoError
from pymongo.read_concern import ReadConcern

from reactor.testing import MongoDouble

Doc = dict[str, Any]


async def test_resumable_getmore_error_without_labels_is_resumed(
    client: AsyncMongoClient[Doc], mongo_double: MongoDouble
) -> None:
    """fail_next with no labels on getMore gets ResumableChangeStreamError, so PyMongo resumes."""
    jobs = client.app.jobs
    async with await jobs.watch(max_await_time_ms=50) as stream:
        mongo_double.fail_next(1, code=6, commands=["getMore"], message="host unreachable")
        await jobs.insert_one({"_id": "after-failure"})
        event = await asyncio.wait_for(stream.next(), 10)
    assert event["documentKey"] == {"_id": "after-failure"}


@pytest.mark.parametrize("code", [6, 91, 189, 262, 10107, 11600, 11602, 13435, 13436, 150, 234])
async def test_server_labels_resumable_codes_on_getmore(
    client: AsyncMongoClient[Doc], mongo_double: MongoDouble, code: int
) -> None:
    """A change stream's getMore failing with a resumable code carries the resumable label."""
    cursor = await client.app.command(
        {"aggregate": "jobs", "pipeline": [{"$changeStream": {}}], "cursor": {}}
    )
    mongo_double.fail_next(1, code=code, commands=["getMore"])
    with pytest.raises(PyMongoError) as caught:  # NotPrimaryError for the "not primary" codes
        await client.app.command(
            {"getMore": cursor["cursor"]["id"], "collection": "jobs", "maxTimeMS": 10}
        )
    assert caught.value.has_error_label("ResumableChangeStreamError")


async def test_non_change_stream_commands_get_no_resumable_label(
    client: AsyncMongoClient[Doc], mongo_double: MongoDouble
) -> None:
    """The same code on a plain find carries no change-stream label."""
    mongo_double.fail_next(1, code=6, commands=["find"])
    with pytest.raises(OperationFailure) as caught:  # a run command is never retried
        await client.app.command({"find": "jobs", "filter": {}})
    assert caught.value.code == 6
    assert not caught.value.has_error_label("ResumableChangeStreamError")


async def test_explicit_empty_labels_make_the_failure_fatal(
    client: AsyncMongoClient[Doc], mongo_double: MongoDouble
) -> None:
    """labels=() replaces the server's labels: code 6 without a label is raised, not resumed."""
    jobs = client.app.jobs
    async with await jobs.watch(max_await_time_ms=50) as stream:
        mongo_double.fail_next(1, code=6, labels=(), commands=["getMore"])
        with pytest.raises(OperationFailure) as caught:
            await asyncio.wait_for(stream.next(), 10)
    assert caught.value.code == 6
    assert not caught.value.has_error_label("ResumableChangeStreamError")


@pytest.mark.parametrize("code", [280, 286])
async def test_fatal_codes_carry_the_non_resumable_label(
    client: AsyncMongoClient[Doc], mongo_double: MongoDouble, code: int
) -> None:
    """280 and 286 carry NonResumableChangeStreamError, as MongoDB attaches it."""
    mongo_double.fail_next(1, code=code, commands=["aggregate"])
    with pytest.raises(OperationFailure) as caught:
        await client.app.jobs.watch()
    assert caught.value.has_error_label("NonResumableChangeStreamError")


async def test_projecting_out_the_token_fails_with_the_non_resumable_label(
    client: AsyncMongoClient[Doc],
) -> None:
    """The double's own 280 (a pipeline removed _id) is labelled NonResumableChangeStreamError."""
    jobs = client.app.jobs
    stream = await jobs.watch([{"$project": {"_id": 0}}], max_await_time_ms=50)
    await jobs.insert_one({"_id": 1})
    with pytest.raises(OperationFailure) as caught:
        await stream.next()
    assert caught.value.code == 280
    assert caught.value.has_error_label("NonResumableChangeStreamError")
    await stream.close()


@pytest.mark.parametrize(
    ("stage", "code"),
    [({"$unsupported": "foo"}, 40324), ({"$group": {"_id": 1}}, 20), ({"$sort": {"a": 1}}, 20)],
)
async def test_invalid_stages_answer_mongodb_codes(
    client: AsyncMongoClient[Doc], stage: Doc, code: int
) -> None:
    """An unknown stage answers 40324, a known one not allowed in a change stream answers 20."""
    with pytest.raises(OperationFailure) as caught:
        await client.app.jobs.watch([stage])
    assert caught.value.code == code


async def test_a_bad_match_filter_fails_the_watch(client: AsyncMongoClient[Doc]) -> None:
    """A $match with an unknown query operator fails when the stream opens, with code 2."""
    with pytest.raises(OperationFailure) as caught:
        await client.app.jobs.watch([{"$match": {"operationType": {"$bogus": 1}}}])
    assert caught.value.code == 2


async def test_read_concern_local_is_refused(client: AsyncMongoClient[Doc]) -> None:
    """A change stream with readConcern local fails with 72; majority is accepted."""
    with pytest.raises(OperationFailure) as caught:
        await client.app.get_collection("jobs", read_concern=ReadConcern("local")).watch()
    assert caught.value.code == 72
    majority = client.app.get_collection("jobs", read_concern=ReadConcern("majority"))
    async with await majority.watch():
        pass


async def test_an_event_over_16_mib_fails_with_10334(client: AsyncMongoClient[Doc]) -> None:
    """An update whose event (pre- and post-image) exceeds 16 MiB fails the getMore with 10334."""
    jobs = await client.app.create_collection("big", changeStreamPreAndPostImages={"enabled": True})
    await jobs.insert_one({"_id": 1, "v": "a" * (9 * 1024 * 1024)})
    stream = await jobs.watch(
        full_document="whenAvailable",
        full_document_before_change="whenAvailable",
        max_await_time_ms=50,
    )
    await jobs.update_one({"_id": 1}, {"$set": {"v": "b" * (9 * 1024 * 1024)}})
    with pytest.raises(OperationFailure) as caught:
        await stream.next()
    assert caught.value.code == 10334
    await stream.close()
