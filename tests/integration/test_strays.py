"""Large results' files that no result refers to are swept; referenced ones are kept."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from gridfs import AsyncGridFSBucket
from pymongo.asynchronous.database import AsyncDatabase

from reactor.client import new_job, wait_for_result
from reactor.config import Settings
from reactor.registry import Registry
from reactor.store import RESULTS_BUCKET, Store
from reactor.strays import StraySweep
from tests.integration.reactors import running

Db = AsyncDatabase[dict[str, Any]]


async def test_a_file_no_result_refers_to_is_deleted_and_a_referenced_one_kept(
    settings: Settings, db: Db, registry: Registry
) -> None:
    """A large result's file stays while its result refers to it; a file left by a result write
    that never landed (or a result since replaced) is deleted by the sweep, once old enough."""
    async with running(settings, registry, result_inline_max_bytes=1024):
        await db.jobs.insert_one(new_job("big", {"size": 50_000}, "large"))
        result = await wait_for_result(db, "large", timeout_s=30)
    kept = result["result_ref"]["file_id"]
    bucket = AsyncGridFSBucket(db, bucket_name=RESULTS_BUCKET)
    stray = await bucket.upload_from_stream(
        "large.bson", b"left behind", metadata={"job_id": "large", "claim_id": "gone"}
    )
    old = datetime.now(UTC) - timedelta(hours=2)
    await db[f"{RESULTS_BUCKET}.files"].update_many({}, {"$set": {"uploadDate": old}})
    sweep = StraySweep(Store(db, owner="sweeper", lease_s=30), every_s=3600)
    assert await sweep.sweep_once() == 1
    left = [f["_id"] async for f in db[f"{RESULTS_BUCKET}.files"].find({}, {"_id": 1})]
    assert left == [kept]
    assert stray not in left
    assert await sweep.sweep_once(min_age_s=0) == 0  # the referenced file is never swept
