"""Claims, heartbeats, results and resume tokens against MongoDB.

Every write about a running job is fenced on ``{_id, lease_owner, attempt, status: running}``,
so a process that stalled past its lease cannot overwrite the attempt that replaced it. A result
is written before the job's final status: a crash between the two leaves a running job whose
lease expires and is re-run, never a finished job without a result.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import UTC, datetime
from typing import Any

import bson
from gridfs import AsyncGridFSBucket
from pymongo import ASCENDING, ReturnDocument
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError, PyMongoError

from reactor import model
from reactor.errors import LeaseLost, ResultNotStorable, StoreError
from reactor.model import Job, Result, Status

STATE_COLLECTION = "reactor_state"
STREAM_STATE_ID = "jobs_stream"
RESULTS_BUCKET = "results_fs"


def utcnow() -> datetime:
    return datetime.now(UTC)


class Store:
    """The reactor's view of its database."""

    def __init__(
        self,
        db: AsyncDatabase[dict[str, Any]],
        *,
        jobs: str = "jobs",
        results: str = "results",
        owner: str,
        lease_s: float,
        result_inline_max_bytes: int = 8_000_000,
    ) -> None:
        self.db = db
        self.jobs: AsyncCollection[dict[str, Any]] = db[jobs]
        self.results: AsyncCollection[dict[str, Any]] = db[results]
        self.state: AsyncCollection[dict[str, Any]] = db[STATE_COLLECTION]
        self.owner = owner
        self.lease_s = lease_s
        self.result_inline_max_bytes = result_inline_max_bytes

    async def ensure_indexes(self) -> None:
        """Unique ``job_id`` on jobs and results; an index for the claim query."""
        await self.jobs.create_index(
            [(model.JOB_ID, ASCENDING)],
            unique=True,
            partialFilterExpression={model.JOB_ID: {"$type": "string"}},
            name="job_id_unique",
        )
        await self.jobs.create_index(
            [(model.STATUS, ASCENDING), (model.LEASE_EXPIRES_AT, ASCENDING)], name="claim"
        )
        await self.results.create_index(
            [(model.JOB_ID, ASCENDING)], unique=True, name="job_id_unique"
        )

    async def claim_next(self, *, exclude_commands: Collection[str] = ()) -> Job | None:
        """Claim the oldest claimable job whose command is not excluded, or return ``None``."""
        now = utcnow()
        query = model.claimable_filter(now)
        if exclude_commands:
            query = {"$and": [query, {model.COMMAND: {"$nin": list(exclude_commands)}}]}
        doc = await self.jobs.find_one_and_update(
            query,
            model.claim_update(self.owner, now, self.lease_s),
            sort=model.CLAIM_ORDER,
            return_document=ReturnDocument.BEFORE,
        )
        return Job.from_claim(doc, self.owner, now) if doc is not None else None

    async def renew(self, job: Job) -> None:
        """Extend the job's lease; raise :class:`LeaseLost` if this attempt no longer owns it."""
        outcome = await self.jobs.update_one(
            job.fence(), model.renew_update(utcnow(), self.lease_s)
        )
        if outcome.matched_count == 0:
            raise LeaseLost(f"job {job.key!r} attempt {job.attempt} is no longer ours")

    async def finish(self, job: Job, result: Result) -> None:
        """Write the result, then the final status, each only while the fence holds."""
        await self.renew(job)  # the fence, and a fresh lease to cover the two writes
        doc = await self._storable(result)
        try:
            await self.results.update_one(
                {model.JOB_ID: result.job_key, model.ATTEMPT: {"$lte": job.attempt}},
                {"$set": doc},
                upsert=True,
            )
        except DuplicateKeyError:
            raise LeaseLost(f"job {job.key!r}: a newer attempt already wrote its result") from None
        outcome = await self.jobs.update_one(
            job.fence(), model.finish_update(result.status, utcnow())
        )
        if outcome.matched_count == 0:
            raise LeaseLost(f"job {job.key!r} attempt {job.attempt} lost its lease while finishing")

    async def requeue(self, job: Job) -> None:
        """Put the job back to queued for another attempt (fenced)."""
        outcome = await self.jobs.update_one(job.fence(), model.requeue_update())
        if outcome.matched_count == 0:
            raise LeaseLost(f"job {job.key!r} attempt {job.attempt} lost its lease before retry")

    async def count_queued(self) -> int:
        return await self.jobs.count_documents(
            {"$or": [{model.STATUS: {"$exists": False}}, {model.STATUS: Status.QUEUED.value}]}
        )

    async def load_resume_token(self) -> dict[str, Any] | None:
        doc = await self.state.find_one({"_id": STREAM_STATE_ID})
        token = doc.get("resume_token") if doc else None
        return token if isinstance(token, dict) else None

    async def save_resume_token(self, token: dict[str, Any] | None) -> None:
        await self.state.update_one(
            {"_id": STREAM_STATE_ID},
            {"$set": {"resume_token": token, "updated_at": utcnow(), "owner": self.owner}},
            upsert=True,
        )

    async def _storable(self, result: Result) -> dict[str, Any]:
        """The result document, with a large value moved to GridFS behind a reference."""
        doc = result.to_doc()
        try:
            size = len(bson.encode(doc))
        except (bson.errors.InvalidDocument, OverflowError) as exc:
            raise ResultNotStorable(f"result cannot be stored as BSON: {exc}") from None
        if size <= self.result_inline_max_bytes or result.value is None:
            return doc
        return await self._offload(doc, size)

    async def _offload(self, doc: dict[str, Any], size: int) -> dict[str, Any]:
        bucket = AsyncGridFSBucket(self.db, bucket_name=RESULTS_BUCKET)
        payload = bson.encode({"result": doc.pop("result")})
        try:
            file_id = await bucket.upload_from_stream(
                f"{doc[model.JOB_ID]}.bson",
                payload,
                metadata={model.JOB_ID: doc[model.JOB_ID], model.ATTEMPT: doc[model.ATTEMPT]},
            )
        except PyMongoError as exc:
            raise StoreError(f"cannot store large result in GridFS: {exc}") from exc
        doc["result"] = None
        doc["result_ref"] = {
            "gridfs_bucket": RESULTS_BUCKET,
            "file_id": file_id,
            "bytes": len(payload),
            "encoding": "bson:{result}",
        }
        return doc


async def load_large_result(db: AsyncDatabase[dict[str, Any]], ref: dict[str, Any]) -> Any:
    """Read back a result stored in GridFS from its ``result_ref``."""
    bucket = AsyncGridFSBucket(db, bucket_name=ref.get("gridfs_bucket", RESULTS_BUCKET))
    stream = await bucket.open_download_stream(ref["file_id"])
    return bson.decode(await stream.read())["result"]
