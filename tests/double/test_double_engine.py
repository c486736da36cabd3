"""The double's engine without a client: BSON order, query plans and their cost, TTL expiry."""

from __future__ import annotations

import datetime as dt
import random
from typing import Any

import pytest
from bson import Decimal128, Int64, MaxKey, MinKey, ObjectId, Regex, Timestamp

from reactor.testing.double.context import Backend
from reactor.testing.double.engine import keystring, query
from reactor.testing.double.engine.catalog import Catalog
from reactor.testing.double.engine.collection import Collection
from reactor.testing.double.engine.index import IndexSpec
from reactor.testing.double.tokens import Position
from reactor.testing.double.ttl import expire

Doc = dict[str, Any]
NOW = dt.datetime(2024, 5, 1, 12, 0)
ME = "me"
NON_NUMBER_TYPES = ["string", "object", "array", "binData", "objectId", "bool", "date", "regex"]
JOB_INDEXES = [
    IndexSpec(
        "job_id_unique", (("job_id", 1),), unique=True, partial={"job_id": {"$type": "string"}}
    ),
    IndexSpec("claim", (("status", 1), ("lease_expires_at", 1))),
    IndexSpec("claim_order", (("status", 1), ("priority", -1), ("_id", 1))),
    IndexSpec("due", (("status", 1), ("run_at", 1))),
    IndexSpec("cancel_requested", (("cancel_requested", 1),), partial={"cancel_requested": True}),
    IndexSpec("cancelled", (("status", 1), ("cancelled_at", 1))),
]
QUEUED = {"status": {"$in": [None, "queued"]}}
DUE = {"run_at": {"$not": {"$gt": NOW}}}
TIERS: list[tuple[str, Doc, Any]] = [
    ("positive", {**QUEUED, "priority": {"$gt": 0}, **DUE}, {"priority": -1, "_id": 1}),
    ("default", {**QUEUED, "priority": {"$in": [None, 0]}, **DUE}, {"_id": 1}),
    ("negative", {**QUEUED, "priority": {"$lt": 0}, **DUE}, {"priority": -1, "_id": 1}),
    (
        "repair",
        {
            "$or": [
                {
                    "status": "running",
                    "lease_expires_at": {"$not": {"$gt": NOW}},
                    "lease_owner": {"$ne": ME},
                },
                {
                    "status": "cancelled",
                    "cancelled_at": None,
                    "lease_expires_at": {"$not": {"$gt": NOW}},
                },
                {
                    "status": {
                        "$nin": [None, "queued", "running", "succeeded", "failed", "cancelled"]
                    }
                },
                {**QUEUED, "priority": {"$type": NON_NUMBER_TYPES}},
                {**QUEUED, "priority": float("nan")},
                {"cancel_requested": True, **QUEUED},
            ]
        },
        None,
    ),
    ("earliest due", {**QUEUED, "run_at": {"$gt": NOW}}, {"run_at": 1}),
]


def test_keystring_orders_values_as_bson_does() -> None:
    """Encodings sort in MongoDB's documented cross-type order, numbers by value."""
    ordered = [
        MinKey(),
        None,
        float("nan"),
        -1.5,
        0,
        Int64(2),
        Decimal128("2.5"),
        3.0,
        "",
        "a",
        "b",
        {"a": 1},
        {"a": 1, "b": 1},
        [1],
        [1, 2],
        b"\x00",
        ObjectId("0" * 24),
        False,
        True,
        dt.datetime(1969, 1, 1),
        NOW,
        Timestamp(1, 1),
        Timestamp(1, 2),
        Regex("a"),
        MaxKey(),
    ]
    shuffled = list(ordered)
    random.Random(7).shuffle(shuffled)
    assert sorted(shuffled, key=keystring.encode) == ordered


def test_keystring_equality_follows_mongodb() -> None:
    """1, 1.0, Int64(1) and Decimal128("1") are one value; true is not 1; -0.0 is 0."""
    assert len({keystring.encode(v) for v in (1, 1.0, Int64(1), Decimal128("1"))}) == 1
    assert keystring.encode(True) != keystring.encode(1)
    assert keystring.encode(-0.0) == keystring.encode(0)
    assert keystring.encode(float("nan")) == keystring.encode(float("nan"))
    assert keystring.encode(2**53 + 1) != keystring.encode(float(2**53))


def _jobs(finished: int, queued: int) -> Collection:
    coll = Catalog().ensure("app", "jobs")
    for spec in JOB_INDEXES:
        coll.add_index(spec)
    for i in range(finished):
        coll.insert({"_id": i, "job_id": f"done-{i}", "status": "succeeded", "priority": 0})
    for i in range(queued):
        doc: Doc = {"_id": finished + i, "job_id": f"q-{i}", "priority": [0, 0, 5, -5][i % 4]}
        if i % 3:
            doc["status"] = "queued"
        if i % 10 == 9:
            doc["run_at"] = NOW + dt.timedelta(minutes=i)
        coll.insert(doc)
    return coll


def _cost(coll: Collection, spec: Doc, sort: Any, limit: int) -> tuple[str, int, list[int]]:
    found = [seq for seq, _ in query.find(coll, spec, sort=sort, limit=limit)]
    return query.LAST.plan, query.LAST.examined, found


@pytest.mark.parametrize(("name", "spec", "sort"), TIERS, ids=[t[0] for t in TIERS])
def test_claims_cost_nothing_per_finished_job(name: str, spec: Doc, sort: Any) -> None:
    """Each claim query examines as many documents with 20,000 finished jobs as with 200."""
    small, large = _jobs(200, 40), _jobs(20_000, 40)
    plan, examined_small, found_small = _cost(small, spec, sort, 1)
    plan_large, examined_large, found_large = _cost(large, spec, sort, 1)
    assert plan == plan_large
    assert plan.startswith(("IXSCAN", "OR("))
    assert examined_small == examined_large <= 5
    assert len(found_small) == len(found_large)


def test_default_claim_takes_the_oldest_due_job_from_the_index() -> None:
    """Tier 2 returns the lowest _id among due default-priority jobs, examining one document."""
    coll = _jobs(1000, 40)
    plan, examined, found = _cost(coll, TIERS[1][1], TIERS[1][2], 1)
    assert plan == "IXSCAN claim_order"
    assert examined == 1
    assert coll.records[found[0]]["_id"] == 1000


def test_fenced_writes_and_results_use_unique_indexes() -> None:
    """The fence filter is served by _id, a result lookup by job_id_unique."""
    coll = _jobs(1000, 10)
    seq = coll.seq_of_id(1003)
    assert seq is not None
    coll.replace(seq, {**coll.records[seq], "status": "running", "lease_owner": ME, "fence": 1})
    fence = {
        "_id": 1003,
        "lease_owner": ME,
        "fence": 1,
        "status": {"$in": ["running", "cancelled"]},
    }
    assert _cost(coll, fence, None, 0)[:2] == ("IXSCAN _id_", 1)
    assert _cost(coll, {"job_id": "done-7"}, None, 0)[:2] == ("IXSCAN job_id_unique", 1)


DOC_VALUES: list[Any] = [None, 0, 1, 2.5, -3, "a", "b", True, NOW, [1, "a"], [], {"x": 1}]
QUERIES: list[Doc] = [
    {"a": 1},
    {"a": None},
    {"a": {"$in": [None, "a", 2.5]}},
    {"a": {"$gt": 0}},
    {"a": {"$gte": "a", "$lt": "b"}},
    {"a": {"$ne": 1}},
    {"a": {"$nin": [None, 1]}},
    {"a": {"$not": {"$gt": 0}}},
    {"a": {"$type": ["string", "bool"]}},
    {"a": {"$exists": False}},
    {"a": 1, "b": {"$lt": 2}},
    {"a": {"$in": [0, 1]}, "b": {"$gte": 1}},
    {"$or": [{"a": "a"}, {"b": 2}]},
    {"b": {"$lte": 0}, "$and": [{"a": {"$ne": None}}]},
]
INDEX_SHAPES = [((("a", 1),)), ((("a", -1), ("b", 1))), ((("a", 1), ("b", -1))), ((("b", 1),))]


@pytest.mark.parametrize("shape", INDEX_SHAPES, ids=str)
def test_index_plans_find_what_a_collection_scan_finds(shape: tuple[tuple[str, int], ...]) -> None:
    """Over mixed-type and array values, every indexed plan returns the collection scan's result."""
    rng = random.Random(11)
    plain, indexed = Catalog().ensure("db", "plain"), Catalog().ensure("db", "indexed")
    indexed.add_index(IndexSpec("shape", shape))
    indexed.add_index(IndexSpec("b_1", (("b", 1),)))
    for i in range(300):
        doc: Doc = {"_id": i}
        for field in "ab":  # arrays only in "a": MongoDB refuses to index parallel arrays
            choices = DOC_VALUES if field == "a" else [v for v in DOC_VALUES if type(v) is not list]
            value = rng.choice([*choices, "missing"])
            if value != "missing":
                doc[field] = value
        plain.insert(dict(doc))
        indexed.insert(dict(doc))
    for spec in QUERIES:
        for sort in (None, {"a": 1, "b": -1}, {"b": -1}):
            expected = [doc for _, doc in query.find(plain, spec, sort=sort)]
            if sort is None:
                expected.sort(key=lambda d: d["_id"])
            got = [doc for _, doc in query.find(indexed, spec, sort=sort)]
            if sort is None:
                got.sort(key=lambda d: d["_id"])
            elif got != expected:  # ties in the sort key may come in any order
                key = query.sort_key_for(sort)
                assert [key(d) for d in got] == [key(d) for d in expected], (spec, sort)
                got.sort(key=lambda d: d["_id"])
                expected.sort(key=lambda d: d["_id"])
            assert got == expected, (spec, sort, query.LAST.plan)


def test_ttl_monitor_deletes_expired_documents_and_records_events() -> None:
    """A monitor pass deletes documents whose date is past expiry, with a delete event each."""
    backend = Backend("rs0", "127.0.0.1:1")
    coll = backend.catalog.ensure("app", "sessions")
    coll.add_index(IndexSpec("ttl", (("seen", 1),), expire_after_s=60))
    coll.insert({"_id": 1, "seen": NOW - dt.timedelta(minutes=5)})
    coll.insert({"_id": 2, "seen": NOW})
    coll.insert({"_id": 3, "seen": "not a date"})
    coll.insert({"_id": 4, "seen": [NOW, NOW - dt.timedelta(hours=1)]})
    assert expire(backend, NOW) == 2
    assert sorted(doc["_id"] for doc in coll.records.values()) == [2, 3]
    events = backend.log.after(Position(0, 0, 0))
    assert sorted((e.operation, (e.before or {})["_id"]) for e in events) == [
        ("delete", 1),
        ("delete", 4),
    ]
