"""The bulkWrite command itself: its reply, its validation, retries, and what it refuses."""

from __future__ import annotations

from typing import Any

import pytest
from bson import Int64
from pymongo import AsyncMongoClient
from pymongo.errors import OperationFailure

from reactor.testing.fixtures import mongo_client, mongo_double, mongo_uri

__all__ = ["mongo_client", "mongo_double", "mongo_uri"]  # fixtures used by name below

Doc = dict[str, Any]
NS_INFO = [{"ns": "app.jobs"}, {"ns": "app.results"}]


def _bulk(ops: list[Doc], **fields: Any) -> Doc:
    return {"bulkWrite": 1, "ops": ops, "nsInfo": NS_INFO, **fields}


async def test_reply_has_mongodb_shape(mongo_client: AsyncMongoClient[Doc]) -> None:
    """Summary counts, and a cursor on admin.$cmd.bulkWrite with one item per op."""
    reply = await mongo_client.admin.command(
        _bulk(
            [
                {"insert": 0, "document": {"_id": 1}},
                {
                    "update": 1,
                    "filter": {"_id": 7},
                    "updateMods": {"$set": {"a": 1}},
                    "upsert": True,
                },
                {"update": 0, "filter": {}, "updateMods": {"$set": {"a": 1}}, "multi": True},
                {"delete": 0, "filter": {"_id": 2}, "multi": False},
            ]
        )
    )
    summary = {k: reply[k] for k in reply if k.startswith("n")}
    assert summary == {
        "nErrors": 0,
        "nInserted": 1,
        "nMatched": 1,
        "nModified": 1,
        "nUpserted": 1,
        "nDeleted": 0,
    }
    assert reply["cursor"] == {
        "id": 0,
        "ns": "admin.$cmd.bulkWrite",
        "firstBatch": [
            {"ok": 1.0, "idx": 0, "n": 1},
            {"ok": 1.0, "idx": 1, "n": 1, "nModified": 0, "upserted": {"index": 0, "_id": 7}},
            {"ok": 1.0, "idx": 2, "n": 1, "nModified": 1},
            {"ok": 1.0, "idx": 3, "n": 0},
        ],
    }


async def test_errors_only_lists_the_failed_ops(mongo_client: AsyncMongoClient[Doc]) -> None:
    """errorsOnly leaves successes out of the cursor and still counts them."""
    ops = [
        {"insert": 0, "document": {"_id": 1}},
        {"insert": 0, "document": {"_id": 1}},
        {"update": 0, "filter": {"_id": 1}, "updateMods": {"$inc": {"n": "x"}}},
    ]
    reply = await mongo_client.admin.command(_bulk(ops, errorsOnly=True, ordered=False))
    batch = reply["cursor"]["firstBatch"]
    assert [(item["idx"], item["code"]) for item in batch] == [(1, 11000), (2, 14)]
    assert batch[1] == {"ok": 0.0, "idx": 2, "code": 14, "errmsg": batch[1]["errmsg"], "n": 0,
                        "nModified": 0}  # fmt: skip
    assert (reply["nErrors"], reply["nInserted"]) == (2, 1)


async def test_batch_size_leaves_the_rest_for_get_more(mongo_client: AsyncMongoClient[Doc]) -> None:
    """cursor.batchSize caps the first batch; getMore on $cmd.bulkWrite returns the rest."""
    ops = [{"insert": 0, "document": {"_id": i}} for i in range(3)]
    reply = await mongo_client.admin.command(_bulk(ops, cursor={"batchSize": 1}))
    cursor = reply["cursor"]
    assert [item["idx"] for item in cursor["firstBatch"]] == [0]
    more = await mongo_client.admin.command(
        {"getMore": cursor["id"], "collection": "$cmd.bulkWrite"}
    )
    assert [item["idx"] for item in more["cursor"]["nextBatch"]] == [1, 2]
    assert more["cursor"]["id"] == 0


async def test_retried_bulk_write_answers_its_first_outcome(
    mongo_client: AsyncMongoClient[Doc],
) -> None:
    """The same bulkWrite sent twice in one session and txnNumber writes once, answers twice."""
    command = _bulk([{"insert": 0, "document": {"_id": 1}}], txnNumber=Int64(1000))
    async with mongo_client.start_session() as session:
        first = await mongo_client.admin.command(command, session=session)
        again = await mongo_client.admin.command(command, session=session)
    assert (first["nInserted"], again["nInserted"], again["nErrors"]) == (1, 1, 0)
    assert await mongo_client.app.jobs.count_documents({}) == 1


async def test_multi_op_in_a_retryable_write_fails_that_op(
    mongo_client: AsyncMongoClient[Doc],
) -> None:
    """With a txnNumber, an update or delete with multi: true fails with 72, as MongoDB's does."""
    ops = [{"delete": 0, "filter": {}, "multi": True}]
    async with mongo_client.start_session() as session:
        reply = await mongo_client.admin.command(_bulk(ops, txnNumber=Int64(1000)), session=session)
    assert reply["cursor"]["firstBatch"][0]["code"] == 72


async def test_bulk_write_runs_only_against_admin(mongo_client: AsyncMongoClient[Doc]) -> None:
    """Sent to another database, bulkWrite fails with 13 Unauthorized."""
    with pytest.raises(OperationFailure) as caught:
        await mongo_client.app.command(_bulk([{"insert": 0, "document": {}}]))
    assert caught.value.code == 13


@pytest.mark.parametrize(
    ("command", "code"),
    [
        ({"bulkWrite": 1, "ops": [{"insert": 0, "document": {}}]}, 40414),
        (_bulk([{"insert": 0, "document": {}}], fooField=1), 40415),
        (_bulk([{"insert": 0, "document": {}, "extra": 1}]), 40415),
        (_bulk([]), 16),
        (_bulk([{"insert": 0, "document": {}}, {"insert": 2, "document": {}}]), 2),
        (_bulk([{"insert": "0", "document": {}}]), 14),
        (_bulk([{"update": 0, "filter": {}}]), 40414),
        ({**_bulk([{"insert": 0, "document": {}}]), "nsInfo": [{"ns": "nodot"}]}, 73),
    ],
)
async def test_malformed_request_fails_before_any_op_runs(
    mongo_client: AsyncMongoClient[Doc], command: Doc, code: int
) -> None:
    """A request MongoDB's parser refuses fails as a whole, with its code, and writes nothing."""
    with pytest.raises(OperationFailure) as caught:
        await mongo_client.admin.command(command)
    assert caught.value.code == code
    assert await mongo_client.app.jobs.count_documents({}) == 0


async def test_let_is_refused_as_a_whole(mongo_client: AsyncMongoClient[Doc]) -> None:
    """A bulkWrite with let answers 238 NotImplemented, as the double's other writes do."""
    with pytest.raises(OperationFailure) as caught:
        await mongo_client.admin.command(_bulk([{"delete": 0, "filter": {}}], let={"x": 1}))
    assert caught.value.code == 238


async def test_refused_op_options_fail_only_their_op(mongo_client: AsyncMongoClient[Doc]) -> None:
    """collation and arrayFilters fail their op with 238; an unordered request runs the rest."""
    ops = [
        {"delete": 0, "filter": {}, "collation": {"locale": "fr"}},
        {"update": 0, "filter": {}, "updateMods": {"$set": {"a.$[i]": 1}}, "arrayFilters": [{}]},
        {"insert": 1, "document": {"_id": 1}},
    ]
    reply = await mongo_client.admin.command(_bulk(ops, ordered=False))
    codes = [item.get("code") for item in reply["cursor"]["firstBatch"]]
    assert codes == [238, 238, None]
    assert await mongo_client.app.results.count_documents({}) == 1


async def test_undefined_variable_fails_its_op_with_17276(
    mongo_client: AsyncMongoClient[Doc],
) -> None:
    """$$name that nothing defines fails the op at parse time, as MongoDB's 17276."""
    ops = [{"delete": 0, "filter": {"$expr": {"$eq": ["$_id", "$$id2"]}}}]
    reply = await mongo_client.admin.command(_bulk(ops))
    (item,) = reply["cursor"]["firstBatch"]
    assert (item["code"], item["errmsg"]) == (17276, "Use of undefined variable: id2")
