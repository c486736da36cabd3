"""renameCollection on the double: data, indexes and UUID move; errors and events as MongoDB's."""

from __future__ import annotations

from typing import Any

import pytest
from pymongo import AsyncMongoClient
from pymongo.errors import OperationFailure

Doc = dict[str, Any]


async def test_rename_moves_documents_and_indexes(client: AsyncMongoClient[Doc]) -> None:
    """After a rename the target holds the documents and indexes; the source is gone."""
    old = client.app.old
    await old.insert_many([{"_id": 1, "k": "a"}, {"_id": 2, "k": "b"}])
    await old.create_index("k", unique=True, name="k_unique")
    await old.rename("new")
    new = client.app.new
    assert await client.app.list_collection_names() == ["new"]
    assert [doc["_id"] async for doc in new.find().sort("_id", 1)] == [1, 2]
    assert "k_unique" in await new.index_information()
    with pytest.raises(OperationFailure) as caught:
        await new.insert_one({"k": "a"})
    assert caught.value.code == 11000


async def test_rename_errors(client: AsyncMongoClient[Doc]) -> None:
    """A missing source answers 26, an existing target 48 (unless dropTarget), itself 20."""
    await client.app.a.insert_one({"_id": "a"})
    await client.app.b.insert_one({"_id": "b"})
    codes = []
    for source, target in [("missing", "x"), ("a", "b"), ("a", "a")]:
        with pytest.raises(OperationFailure) as caught:
            await client.app[source].rename(target)
        codes.append(caught.value.code)
    assert codes == [26, 48, 20]
    await client.app.a.rename("b", dropTarget=True)
    assert await client.app.b.find().to_list() == [{"_id": "a"}]


async def test_rename_invalidates_the_source_stream(client: AsyncMongoClient[Doc]) -> None:
    """A stream on the source sees rename (with the new namespace), then invalidate."""
    old = client.app.old
    await old.insert_one({"_id": 1})
    async with await old.watch() as stream:
        await old.rename("new")
        renamed, invalidate = await stream.next(), await stream.next()
    assert renamed["operationType"] == "rename"
    assert renamed["to"] == {"db": "app", "coll": "new"}
    assert invalidate["operationType"] == "invalidate"


async def test_rename_with_drop_target_names_the_dropped_uuid(
    client: AsyncMongoClient[Doc],
) -> None:
    """With dropTarget over an existing collection the event's description names its UUID."""
    await client.app.src.insert_one({"_id": 1})
    await client.app.dst.insert_one({"_id": 2})
    async with await client.app.watch(show_expanded_events=True) as stream:
        await client.app.src.rename("dst", dropTarget=True)
        event = await stream.next()
    assert event["operationType"] == "rename"
    assert set(event["operationDescription"]) == {"to", "dropTarget"}
