"""Write and read concerns: what one member cannot satisfy fails as MongoDB reports it."""

from __future__ import annotations

from typing import Any

import pytest
from pymongo import AsyncMongoClient, WriteConcern
from pymongo.errors import OperationFailure, WriteConcernError
from pymongo.read_concern import ReadConcern

Doc = dict[str, Any]


async def test_w_above_the_member_count_is_a_write_concern_error(
    client: AsyncMongoClient[Doc],
) -> None:
    """w: 2 on one member applies the write, then reports writeConcernError 100."""
    jobs = client.app.get_collection("jobs", write_concern=WriteConcern(w=2))
    with pytest.raises(WriteConcernError) as caught:
        await jobs.insert_one({"_id": 1})
    assert caught.value.code == 100
    assert await client.app.jobs.count_documents({}) == 1


async def test_unknown_tag_set_is_a_write_concern_error(client: AsyncMongoClient[Doc]) -> None:
    """A w naming a tag set the replica set lacks reports writeConcernError 79."""
    jobs = client.app.get_collection("jobs", write_concern=WriteConcern(w="east"))
    with pytest.raises(WriteConcernError) as caught:
        await jobs.delete_many({})
    assert caught.value.code == 79


@pytest.mark.parametrize("concern", [WriteConcern(w=1), WriteConcern(w="majority", j=True)])
async def test_satisfiable_write_concerns_succeed(
    client: AsyncMongoClient[Doc], concern: WriteConcern
) -> None:
    """w: 1 and majority are satisfied by the one member."""
    jobs = client.app.get_collection("jobs", write_concern=concern)
    result = await jobs.insert_one({"_id": 1})
    assert result.acknowledged


async def test_snapshot_reads_are_refused(client: AsyncMongoClient[Doc]) -> None:
    """readConcern snapshot answers 238 instead of a cursor without atClusterTime."""
    jobs = client.app.get_collection("jobs", read_concern=ReadConcern("snapshot"))
    with pytest.raises(OperationFailure) as caught:
        await jobs.find_one({})
    assert caught.value.code == 238


async def test_the_oplog_is_refused(client: AsyncMongoClient[Doc]) -> None:
    """local.oplog.rs answers 238: the double keeps its change events elsewhere."""
    with pytest.raises(OperationFailure) as caught:
        await client.local["oplog.rs"].find_one({})
    assert caught.value.code == 238
