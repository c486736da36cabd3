"""``$merge`` through the double with the real AsyncMongoClient, as MongoDB 8.0 answers it."""

from __future__ import annotations

from typing import Any

import pytest
from bson import ObjectId
from pymongo import AsyncMongoClient
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import OperationFailure
from pymongo.read_concern import ReadConcern
from pymongo.write_concern import WriteConcern

Doc = dict[str, Any]
EXECUTION = "PlanExecutor error during aggregation :: caused by :: "


@pytest.fixture
def db(client: AsyncMongoClient[Doc]) -> AsyncDatabase[Doc]:
    return client.app


@pytest.fixture
async def results(db: AsyncDatabase[Doc]) -> AsyncCollection[Doc]:
    """``results`` with the unique ``job_id`` index a ``$merge`` on ``job_id`` needs."""
    await db.results.create_index("job_id", unique=True)
    return db.results


def result_write(job_id: int, claim_id: str, result: Doc) -> list[Doc]:
    """The reactor's fenced result write: one job document becomes its result."""
    fence = {"_id": job_id, "claim_id": claim_id, "status": {"$in": ["running", "cancelled"]}}
    merge = {
        "into": "results",
        "on": "job_id",
        "whenMatched": "replace",
        "whenNotMatched": "insert",
    }
    return [{"$match": fence}, {"$replaceWith": {"$literal": result}}, {"$merge": merge}]


async def run(coll: AsyncCollection[Doc] | AsyncDatabase[Doc], pipeline: list[Doc]) -> list[Doc]:
    cursor = await coll.aggregate(pipeline)
    return await cursor.to_list()


async def failure(coll: AsyncCollection[Doc] | AsyncDatabase[Doc], pipeline: list[Doc]) -> Doc:
    """The error document of an aggregate that must fail."""
    with pytest.raises(OperationFailure) as caught:
        await run(coll, pipeline)
    details = caught.value.details
    assert details is not None
    return details


async def test_result_write_inserts_with_a_new_id_then_replaces_keeping_it(
    db: AsyncDatabase[Doc], results: AsyncCollection[Doc]
) -> None:
    """The reactor's write inserts a result under a fresh ObjectId, a rewrite keeps that _id."""
    await db.jobs.insert_one({"_id": 7, "claim_id": "c1", "status": "running"})
    assert await run(db.jobs, result_write(7, "c1", {"job_id": 7, "status": "done"})) == []
    first = await results.find_one({"job_id": 7})
    assert first is not None
    assert isinstance(first["_id"], ObjectId)
    await run(db.jobs, result_write(7, "c1", {"job_id": 7, "status": "failed", "error": "x"}))
    assert await results.find().to_list() == [
        {"_id": first["_id"], "job_id": 7, "status": "failed", "error": "x"}
    ]


async def test_result_write_with_a_stale_claim_writes_nothing(
    db: AsyncDatabase[Doc], results: AsyncCollection[Doc]
) -> None:
    """A job whose claim moved on matches nothing, so no result is written."""
    await db.jobs.insert_one({"_id": 7, "claim_id": "c2", "status": "running"})
    await run(db.jobs, result_write(7, "c1", {"job_id": 7, "status": "done"}))
    assert await results.count_documents({}) == 0


async def test_batched_result_write_picks_each_result_with_switch(
    db: AsyncDatabase[Doc], results: AsyncCollection[Doc]
) -> None:
    """Several jobs matched at once each get their own result from a $switch on _id."""
    await db.jobs.insert_many(
        [{"_id": i, "claim_id": f"c{i}", "status": "running"} for i in (1, 2)]
    )
    branches = [
        {"case": {"$eq": ["$_id", i]}, "then": {"$literal": {"job_id": i, "out": f"r{i}"}}}
        for i in (1, 2)
    ]
    await run(
        db.jobs,
        [
            {"$match": {"$or": [{"_id": 1, "claim_id": "c1"}, {"_id": 2, "claim_id": "c2"}]}},
            {"$replaceWith": {"$switch": {"branches": branches}}},
            {"$merge": {"into": "results", "on": "job_id", "whenMatched": "replace"}},
        ],
    )
    found = await results.find({}, {"_id": 0}).sort("job_id").to_list()
    assert found == [{"job_id": 1, "out": "r1"}, {"job_id": 2, "out": "r2"}]


async def test_string_form_merges_on_id_into_a_new_collection(db: AsyncDatabase[Doc]) -> None:
    """{$merge: "copy"} creates the target, then merges by _id: old fields stay, new ones set."""
    await db.src.insert_many([{"_id": 1, "a": 1}, {"_id": 2, "a": 2}])
    await run(db.src, [{"$merge": "copy"}])
    assert await db.copy.find().to_list() == [{"_id": 1, "a": 1}, {"_id": 2, "a": 2}]
    await db.copy.update_one({"_id": 1}, {"$set": {"kept": True}})
    await db.src.update_one({"_id": 1}, {"$set": {"a": 10}})
    await run(db.src, [{"$merge": "copy"}])
    assert await db.copy.find_one({"_id": 1}) == {"_id": 1, "a": 10, "kept": True}


async def test_into_another_database(client: AsyncMongoClient[Doc], db: AsyncDatabase[Doc]) -> None:
    """into {db, coll} writes into a collection of another database."""
    await db.src.insert_one({"_id": 1, "a": 1})
    await run(db.src, [{"$merge": {"into": {"db": "archive", "coll": "copy"}}}])
    assert await client.archive.copy.find().to_list() == [{"_id": 1, "a": 1}]
    assert "copy" not in await db.list_collection_names()


async def test_on_fields_match_a_compound_unique_index_in_any_order(
    db: AsyncDatabase[Doc],
) -> None:
    """on [a, b] is backed by a unique index on {b, a}; the match keeps the target's _id."""
    await db.target.create_index([("b", 1), ("a", 1)], unique=True)
    await db.target.insert_one({"_id": "t", "a": 1, "b": 2, "old": True})
    await db.src.insert_one({"a": 1, "b": 2, "new": True})
    await run(db.src, [{"$project": {"_id": 0}}, {"$merge": {"into": "target", "on": ["a", "b"]}}])
    assert await db.target.find().to_list() == [
        {"_id": "t", "a": 1, "b": 2, "old": True, "new": True}
    ]


@pytest.mark.parametrize(
    "index",
    [
        {"keys": "job_id"},  # not unique
        {"keys": "job_id", "unique": True, "partialFilterExpression": {"job_id": {"$gt": 0}}},
        {"keys": [("job_id", 1), ("other", 1)], "unique": True},  # more fields than on
        {"keys": [("job_id", "hashed")]},  # not a plain ascending/descending key
    ],
)
async def test_on_fields_without_a_full_unique_index_fail_51183(
    db: AsyncDatabase[Doc], index: Doc
) -> None:
    """on needs a unique, non-partial index on exactly its fields, or fails with 51183."""
    keys = index.pop("keys")
    await db.target.create_index(keys, **index)
    await db.src.insert_one({"job_id": 1})
    details = await failure(db.src, [{"$merge": {"into": "target", "on": "job_id"}}])
    assert details["code"] == 51183
    assert details["errmsg"] == "Cannot find index to verify that join fields will be unique"


async def test_on_other_than_id_into_a_missing_collection_fails_51183(
    db: AsyncDatabase[Doc],
) -> None:
    """A missing target has only _id to merge on, even when the source is empty."""
    details = await failure(db.src, [{"$merge": {"into": "nowhere", "on": "job_id"}}])
    assert details["code"] == 51183
    assert await run(db.src, [{"$merge": {"into": "nowhere", "on": "_id"}}]) == []


async def test_keep_existing_leaves_matches_and_inserts_the_rest(db: AsyncDatabase[Doc]) -> None:
    """whenMatched keepExisting changes no matched document and inserts the others."""
    await db.target.insert_one({"_id": 1, "a": "old"})
    await db.src.insert_many([{"_id": 1, "a": "new"}, {"_id": 2, "a": "new"}])
    await run(db.src, [{"$merge": {"into": "target", "whenMatched": "keepExisting"}}])
    assert await db.target.find().to_list() == [{"_id": 1, "a": "old"}, {"_id": 2, "a": "new"}]


async def test_merge_of_an_unmatched_document_inserts_it_with_a_new_id(
    db: AsyncDatabase[Doc], results: AsyncCollection[Doc]
) -> None:
    """whenMatched merge upserts: the on field, then the document's fields, under a new _id."""
    await db.src.insert_one({"_id": 5, "job_id": "j", "x": 1})
    await run(db.src, [{"$project": {"_id": 0}}, {"$merge": {"into": "results", "on": "job_id"}}])
    stored = await results.find_one()
    assert stored is not None
    assert list(stored) == ["_id", "job_id", "x"]
    assert isinstance(stored["_id"], ObjectId)


async def test_when_matched_fail_reports_the_duplicate_and_writes_the_rest(
    db: AsyncDatabase[Doc],
) -> None:
    """whenMatched fail inserts: a match fails with 11000, the batch's other documents land."""
    await db.target.insert_one({"_id": 1})
    await db.src.insert_many([{"_id": 1, "a": 1}, {"_id": 2, "a": 2}])
    details = await failure(db.src, [{"$merge": {"into": "target", "whenMatched": "fail"}}])
    assert details["code"] == 11000
    assert details["codeName"] == "DuplicateKey"
    assert details["keyPattern"] == {"_id": 1}
    assert details["keyValue"] == {"_id": 1}
    assert details["errmsg"].startswith(
        EXECUTION + "$merge with whenMatched: fail found an existing document with the same "
        "values for the 'on' fields :: caused by :: E11000 duplicate key error collection: "
        "app.target index: _id_ dup key: { _id: 1 }"
    )
    assert await db.target.find().to_list() == [{"_id": 1}, {"_id": 2, "a": 2}]


async def test_discard_replaces_matches_and_drops_the_rest(db: AsyncDatabase[Doc]) -> None:
    """whenNotMatched discard writes only documents that match, and creates nothing."""
    await db.target.insert_one({"_id": 1, "b": 1})
    await db.src.insert_many([{"_id": 1, "a": 1}, {"_id": 2, "a": 2}])
    spec = {"into": "target", "whenMatched": "replace", "whenNotMatched": "discard"}
    await run(db.src, [{"$merge": spec}])
    assert await db.target.find().to_list() == [{"_id": 1, "a": 1}]
    await run(db.src, [{"$merge": dict(spec, into="missing")}])
    assert "missing" not in await db.list_collection_names()


async def test_not_matched_fail_answers_13113_after_writing_the_matches(
    db: AsyncDatabase[Doc],
) -> None:
    """whenNotMatched fail replaces what matches, then fails with MergeStageNoMatchingDocument."""
    await db.target.insert_many([{"_id": 1, "b": 1}, {"_id": 3, "b": 3}])
    await db.src.insert_many([{"_id": i, "a": i} for i in (1, 2, 3)])
    spec = {"into": "target", "whenMatched": "replace", "whenNotMatched": "fail"}
    details = await failure(db.src, [{"$merge": spec}])
    assert details["code"] == 13113
    assert details["codeName"] == "MergeStageNoMatchingDocument"
    assert details["errmsg"] == (
        EXECUTION + "$merge could not find a matching document in the target collection for at "
        "least one document in the source collection"
    )
    assert await db.target.find().to_list() == [{"_id": 1, "a": 1}, {"_id": 3, "a": 3}]


async def test_pipeline_reads_new_and_let_variables(db: AsyncDatabase[Doc]) -> None:
    """A whenMatched pipeline sees the output document as $$new and let values from it."""
    await db.target.insert_one({"_id": 1, "total": 10})
    await db.src.insert_one({"_id": 1, "amount": 5})
    pipeline = [
        {"$set": {"total": {"$add": ["$total", "$$new.amount"]}, "twice": "$$double"}},
        {"$unset": "missing"},
    ]
    spec = {
        "into": "target",
        "whenMatched": pipeline,
        "let": {"double": {"$multiply": ["$amount", 2]}},
    }
    await run(db.src, [{"$merge": spec}])
    assert await db.target.find().to_list() == [{"_id": 1, "total": 15, "twice": 10}]


async def test_pipeline_inserts_an_unmatched_document_as_it_is(db: AsyncDatabase[Doc]) -> None:
    """With a pipeline, whenNotMatched insert stores the output document itself."""
    await db.src.insert_one({"_id": 2, "amount": 5})
    spec = {"into": "target", "whenMatched": [{"$set": {"seen": True}}]}
    await run(db.src, [{"$merge": spec}])
    assert await db.target.find().to_list() == [{"_id": 2, "amount": 5}]


async def test_pipeline_without_new_in_let_cannot_read_it_when_discarding(
    db: AsyncDatabase[Doc],
) -> None:
    """let without new leaves $$new undefined unless unmatched documents are inserted (17276)."""
    await db.target.insert_one({"_id": 1})
    await db.src.insert_one({"_id": 1, "a": 1})
    spec = {
        "into": "target",
        "whenMatched": [{"$set": {"a": "$$new.a"}}],
        "whenNotMatched": "discard",
        "let": {"x": 1},
    }
    details = await failure(db.src, [{"$merge": spec}])
    assert details["code"] == 17276
    assert await run(db.src, [{"$merge": dict(spec, whenNotMatched="insert")}]) == []
    assert await db.target.find().to_list() == [{"_id": 1, "a": 1}]


@pytest.mark.parametrize(("stage", "code"), [({"$group": {"_id": 1}}, 72), ({"$nope": {}}, 40324)])
async def test_pipeline_stages_outside_an_update_are_refused(
    db: AsyncDatabase[Doc], stage: Doc, code: int
) -> None:
    """Only update-pipeline stages run in whenMatched: others 72, unknown names 40324."""
    await db.src.insert_one({"_id": 1})
    details = await failure(db.src, [{"$merge": {"into": "target", "whenMatched": [stage]}}])
    assert details["code"] == code


@pytest.mark.parametrize("when_matched", ["replace", "merge"])
async def test_changing_the_id_of_a_match_fails_66(
    db: AsyncDatabase[Doc], results: AsyncCollection[Doc], when_matched: str
) -> None:
    """A matched document whose _id would change fails with ImmutableField and stays as it was."""
    await results.insert_one({"_id": 1, "job_id": "j", "v": 1})
    await db.src.insert_one({"_id": 2, "job_id": "j", "v": 2})
    spec = {"into": "results", "on": "job_id", "whenMatched": when_matched}
    details = await failure(db.src, [{"$merge": spec}])
    assert details["code"] == 66
    assert details["codeName"] == "ImmutableField"
    assert details["errmsg"].startswith(
        EXECUTION + "$merge failed to update the matching document, did you attempt to modify "
        "the _id or the shard key? :: caused by :: "
    )
    assert await results.find().to_list() == [{"_id": 1, "job_id": "j", "v": 1}]


@pytest.mark.parametrize(
    ("value", "code"), [({"other": 1}, 51132), ({"job_id": None}, 51132), ({"job_id": [1]}, 51185)]
)
async def test_a_missing_null_or_array_on_value_fails_and_writes_nothing(
    db: AsyncDatabase[Doc], results: AsyncCollection[Doc], value: Doc, code: int
) -> None:
    """An on field that is missing or null (51132) or an array (51185) stops the batch."""
    await db.src.insert_many([{"job_id": "ok"}, value])
    details = await failure(db.src, [{"$merge": {"into": "results", "on": "job_id"}}])
    assert details["code"] == code
    assert details["errmsg"].startswith(EXECUTION + "$merge write error: 'on' field 'job_id'")
    assert await results.count_documents({}) == 0


async def test_a_duplicate_on_another_unique_index_fails_11000(
    db: AsyncDatabase[Doc], results: AsyncCollection[Doc]
) -> None:
    """The writes go through every unique index: a clash on another one fails the command."""
    await results.create_index("slot", unique=True)
    await results.insert_one({"job_id": "a", "slot": 1})
    await db.src.insert_one({"job_id": "b", "slot": 1})
    details = await failure(
        db.src, [{"$project": {"_id": 0}}, {"$merge": {"into": "results", "on": "job_id"}}]
    )
    assert details["code"] == 11000
    assert details["keyPattern"] == {"slot": 1}
    assert details["errmsg"].startswith(
        EXECUTION + "$merge failed due to a DuplicateKey error :: caused by :: E11000"
    )


async def test_change_stream_sees_the_merged_writes(
    db: AsyncDatabase[Doc], results: AsyncCollection[Doc]
) -> None:
    """A stream on the target sees insert, replace, and update events with their descriptions."""
    await db.jobs.insert_one({"_id": 7, "claim_id": "c1", "status": "running"})
    async with await results.watch() as stream:
        await run(db.jobs, result_write(7, "c1", {"job_id": 7, "status": "done"}))
        await run(db.jobs, result_write(7, "c1", {"job_id": 7, "status": "failed"}))
        base = [
            {"$match": {"_id": 7}},
            {"$project": {"_id": 0, "job_id": "$_id", "n": {"$literal": 1}}},
        ]
        await run(db.jobs, [*base, {"$merge": {"into": "results", "on": "job_id"}}])
        pipeline = [{"$set": {"n": {"$add": ["$n", "$$new.n"]}}}]
        await run(
            db.jobs,
            [*base, {"$merge": {"into": "results", "on": "job_id", "whenMatched": pipeline}}],
        )
        events = [await stream.next() for _ in range(4)]
    assert [e["operationType"] for e in events] == ["insert", "replace", "update", "update"]
    assert events[0]["fullDocument"]["status"] == "done"
    assert events[1]["fullDocument"]["status"] == "failed"
    assert events[1]["documentKey"] == {"_id": events[0]["fullDocument"]["_id"]}
    assert events[2]["updateDescription"]["updatedFields"] == {"n": 1}
    assert events[3]["updateDescription"]["updatedFields"] == {"n": 2}


async def test_a_missing_target_gets_its_create_event_before_the_inserts(
    db: AsyncDatabase[Doc],
) -> None:
    """A stream with expanded events sees the target created, then its documents inserted."""
    await db.src.insert_one({"_id": 1})
    async with await db.watch(show_expanded_events=True) as stream:
        await run(db.src, [{"$merge": {"into": {"db": "app", "coll": "fresh"}}}])
        events = [await stream.next() for _ in range(2)]
    assert [(e["operationType"], e["ns"]["coll"]) for e in events] == [
        ("create", "fresh"),
        ("insert", "fresh"),
    ]


async def test_write_concern_and_bypass_document_validation_are_accepted(
    db: AsyncDatabase[Doc],
) -> None:
    """A $merge with a majority write concern and bypassDocumentValidation writes as usual."""
    await db.src.insert_one({"_id": 1})
    majority = db.src.with_options(write_concern=WriteConcern("majority"))
    cursor = await majority.aggregate([{"$merge": "copy"}], bypassDocumentValidation=True)
    assert await cursor.to_list() == []
    assert await db.copy.count_documents({}) == 1


async def test_merge_refuses_a_linearizable_read_concern(db: AsyncDatabase[Doc]) -> None:
    """$merge with readConcern linearizable answers 72 and writes nothing."""
    await db.src.insert_one({"_id": 1})
    strict = db.src.with_options(read_concern=ReadConcern("linearizable"))
    assert (await failure(strict, [{"$merge": "copy"}]))["code"] == 72
    assert "copy" not in await db.list_collection_names()


@pytest.mark.parametrize(
    ("pipeline", "code"),
    [
        ([{"$merge": "copy"}, {"$match": {}}], 40601),
        ([{"$out": "copy"}, {"$match": {}}], 40601),
        ([{"$facet": {"f": [{"$merge": "copy"}]}}], 40600),
        ([{"$lookup": {"from": "x", "pipeline": [{"$merge": "copy"}], "as": "y"}}], 51047),
        ([{"$unionWith": {"coll": "x", "pipeline": [{"$out": "copy"}]}}], 31441),
    ],
)
async def test_write_stages_only_stand_last_at_the_top_level(
    db: AsyncDatabase[Doc], pipeline: list[Doc], code: int
) -> None:
    """$merge and $out must be the final stage and never inside a sub-pipeline."""
    await db.src.insert_one({"_id": 1})
    assert (await failure(db.src, pipeline))["code"] == code
    assert "copy" not in await db.list_collection_names()


MERGE_SPEC_ERRORS: list[tuple[Any, int]] = [
    (5, 14),
    ({"on": "_id"}, 40414),
    ({"into": "c", "bogus": 1}, 40415),
    ({"into": 5}, 51178),
    ({"into": ""}, 5786800),
    ({"into": {"db": "app"}}, 5786801),
    ({"into": {"coll": "c", "x": 1}}, 40415),
    ({"into": {"coll": 5}}, 14),
    ({"into": "c", "on": 5}, 51186),
    ({"into": "c", "on": [5]}, 51134),
    ({"into": "c", "on": []}, 51187),
    ({"into": "c", "on": ["_id", "_id"]}, 31465),
    ({"into": "c", "whenMatched": 5}, 51191),
    ({"into": "c", "whenMatched": "pipeline"}, 2),
    ({"into": "c", "whenNotMatched": "nope"}, 2),
    ({"into": "c", "whenNotMatched": 5}, 14),
    ({"into": "c", "whenMatched": "keepExisting", "whenNotMatched": "fail"}, 51181),
    ({"into": "c", "whenMatched": "fail", "whenNotMatched": "discard"}, 51181),
    ({"into": "c", "let": {"x": 1}}, 51199),
    ({"into": "c", "whenMatched": [], "let": {"new": "$x"}}, 51273),
    ({"into": "c", "whenMatched": [], "let": {"Bad": 1}}, 16867),
    ({"into": "c", "whenMatched": [], "let": 5}, 14),
    ({"into": "c", "whenMatched": [5]}, 14),
    ({"into": "a$b"}, 73),
    ({"into": "system.views"}, 31319),
    ({"into": {"db": "admin", "coll": "c"}}, 31320),
]


@pytest.mark.parametrize(
    ("spec", "code"), MERGE_SPEC_ERRORS, ids=[str(s) for s, _ in MERGE_SPEC_ERRORS]
)
async def test_a_malformed_merge_fails_before_reading_anything(
    db: AsyncDatabase[Doc], spec: Any, code: int
) -> None:
    """Each malformed $merge answers MongoDB's code for it and writes nothing."""
    await db.src.insert_one({"_id": 1})
    assert (await failure(db.src, [{"$merge": spec}]))["code"] == code
    assert await db.list_collection_names() == ["src"]
