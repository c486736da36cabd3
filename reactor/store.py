"""Claims, leases, results and resume tokens against MongoDB (documents: ``model``/``queries``).

Every call goes through :class:`reactor.driver.Calls` (bounded, shielded, watched). A result is
written before the job's final status: a crash between the two leaves a running job whose
lease expires and is re-run, never a finished job without a result. A result write is refused
when a newer claim already wrote one (the ``fence`` check) or when the result belongs to another
job; the store then tells a lost lease (:class:`LeaseLost`) from a refusal with the job still
ours (:class:`ResultRefused`), so the caller can end the job instead of looping.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, NoReturn

import bson
from bson import ObjectId
from gridfs import AsyncGridFSBucket
from gridfs.errors import NoFile
from pymongo import ReturnDocument
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import OperationFailure, PyMongoError

from reactor import index_plan as indexes
from reactor import model, queries
from reactor.driver import Calls
from reactor.errors import (
    CancelPending,
    IndexConflict,
    JobRequeued,
    LeaseLost,
    ResultRefused,
)
from reactor.logging import get_logger
from reactor.model import Job, Result
from reactor.queries import UNRESTRICTED, Doc, Restriction, Tier

log = get_logger("reactor.store")

STATE_COLLECTION = "reactor_state"
STREAM_STATE_ID = "jobs_stream"
RESULTS_BUCKET = "results_fs"
INDEX_CONFLICT_CODES = (85, 86)  # IndexOptionsConflict, IndexKeySpecsConflict
DUPLICATE_KEY = 11000
NO_MERGE_INDEX = 51183  # $merge: no unique index on its "on" fields


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
        worker: str | None = None,
        result_inline_max_bytes: int = 8_000_000,
        calls: Calls | None = None,
        timeout_s: float = 10.0,
        clock: Callable[[], datetime] = utcnow,
        more_indexes: Mapping[str, Mapping[str, tuple[queries.Sort, Doc]]] | None = None,
    ) -> None:
        self.db = db
        self.jobs: AsyncCollection[dict[str, Any]] = db[jobs]
        self.results: AsyncCollection[dict[str, Any]] = db[results]
        self.state: AsyncCollection[dict[str, Any]] = db[STATE_COLLECTION]
        self.owner = owner  # the lease owner: unique to this process
        self.worker = worker or owner  # the name results carry
        self.lease_s = lease_s
        self.result_inline_max_bytes = result_inline_max_bytes
        self.calls = calls or Calls()
        self.timeout_s = timeout_s
        self.now = clock  # the server's time (``clock.ServerClock``): leases are judged by it
        self.more_indexes = dict(more_indexes or {})  # collection name -> its index specs

    async def _run(self, name: str, call: Any) -> Any:
        return await self.calls.run(name, self.timeout_s, call)

    async def index_decisions(self) -> list[indexes.Decision]:
        """What :meth:`ensure_indexes` would do with the indexes the collections have now."""
        decisions: list[indexes.Decision] = []
        for coll, specs in self._index_specs():
            cursor = await self._run("list_indexes", coll.list_indexes())
            existing = await self._run("list_indexes", cursor.to_list())
            decisions += indexes.decide(coll.name, specs, existing)
        return decisions

    def _index_specs(self) -> list[tuple[AsyncCollection[dict[str, Any]], dict[str, Any]]]:
        """Each collection's wanted indexes: ``queries.INDEXES`` on jobs, ``RESULT_INDEXES`` on
        results, and ``more_indexes`` (workflows' and callbacks')."""
        wanted: dict[str, dict[str, Any]] = {
            self.jobs.name: dict(queries.INDEXES),
            self.results.name: dict(queries.RESULT_INDEXES),
        }
        for name, specs in self.more_indexes.items():
            wanted.setdefault(name, {}).update(specs)
        return [(self.db[name], specs) for name, specs in wanted.items()]

    async def ensure_indexes(self, *, replace: bool = False) -> list[indexes.Decision]:
        """Create the indexes of ``queries.INDEXES``, ``RESULT_INDEXES`` and ``more_indexes``
        that are missing.

        An existing index that does the same under another name is used as it is; unsuitable
        ones in the way (``reactor.indexes``) raise :class:`IndexConflict`, or with ``replace``
        (``reactor migrate --apply``) are dropped and replaced.
        """
        decisions = await self.index_decisions()
        if not replace and any(d.action is indexes.Action.REPLACE for d in decisions):
            raise IndexConflict(indexes.conflict_message(decisions))
        for decision in decisions:
            coll = self.db[decision.collection]
            for name, _ in decision.drop:
                await self._run("drop_index", coll.drop_index(name))
            if decision.create:
                keys, options = decision.spec
                try:
                    await self._run(
                        "create_index", coll.create_index(keys, name=decision.name, **options)
                    )
                except OperationFailure as exc:
                    if exc.code not in INDEX_CONFLICT_CODES:
                        raise
                    raise IndexConflict(
                        f"{decision.collection}: MongoDB refused the index {decision.name} "
                        f"({exc.code}: {exc.details.get('errmsg') if exc.details else exc}): "
                        f"{indexes.FIX}"
                    ) from None
        return decisions

    # -- claims ----------------------------------------------------------------------------

    async def claim(self, query: Doc, sort: queries.Sort | None) -> Job | None:
        """Claim one job matching ``query`` (first in ``sort``), or return ``None``."""
        now, sent, claim_id = self.now(), time.monotonic(), ObjectId()
        update = queries.claim_update(self.owner, claim_id, now, self.lease_s)
        options: dict[str, Any] = {"return_document": ReturnDocument.BEFORE}
        if sort:
            options["sort"] = sort
        # Bounded well inside the lease: a claim that waited out an outage would land with a
        # lease that has already expired, and another reactor would take the job again.
        claim = self.jobs.find_one_and_update(query, update, **options)
        doc = await self.calls.run("claim", min(self.timeout_s, self.lease_s / 2), claim)
        if doc is None:
            return None
        if _requeued_while_running(doc):
            doc = await self._finished_before(doc)
        return Job.from_claim(doc, self.owner, now, claimed_at=sent, claim_id=claim_id)

    async def _finished_before(self, doc: Doc) -> Doc:
        """A job a client set back to queued while a claim still held it, whose lease then ran
        out (its owner died): if that claim had already written its result, it is a new run."""
        key = doc.get(model.JOB_ID)
        query = {model.JOB_ID: key, model.CLAIM_ID: doc.get(model.CLAIM_ID)}
        written = await self._run(
            "result_read", self.results.find_one(query, {model.FINISHED_AT: 1})
        )
        if written is None or not isinstance(key, str):
            return doc
        return {**doc, model.FINISHED_AT: written.get(model.FINISHED_AT) or self.now()}

    async def claim_tier(
        self, tier: Tier, restriction: Restriction = UNRESTRICTED, *, reclaim: bool = True
    ) -> Job | None:
        query, sort = queries.tier_query(tier, self.now(), self.owner, reclaim=reclaim)
        return await self.claim(queries.restrict(query, restriction), sort)

    async def claim_batch(
        self,
        tier: Tier,
        restriction: Restriction,
        most: int,
        choose: Callable[[list[Any]], list[int]],
    ) -> list[Job] | None:
        """Claim up to ``most`` queued jobs of ``tier`` in three round trips, whatever their
        number: the first ``most`` candidates in claim order, those ``choose`` admits (by their
        commands), claimed together under one claim id (every job's fence still its own), and
        read back as claimed. ``None``: there were candidates, but none was claimed (restricted,
        or taken by another reactor meanwhile); empty: the tier had none."""
        now, sent, claim_id = self.now(), time.monotonic(), ObjectId()
        query, sort = queries.tier_query(tier, now, self.owner)
        query = queries.batch_claimable(queries.restrict(query, restriction))
        bound_s = min(self.timeout_s, self.lease_s / 2)  # as a single claim: inside the lease
        projection = {model.COMMAND: 1, model.ATTEMPT: 1}  # the claim's $max changes attempt
        found = self.jobs.find(query, projection, sort=sort, limit=most).to_list()
        candidates = await self.calls.run("claim_find", bound_s, found)
        chosen = [candidates[i] for i in choose([c.get(model.COMMAND) for c in candidates])]
        if not chosen:
            return None if candidates else []
        picked = [candidate[model.ID] for candidate in chosen]
        update = queries.claim_update(self.owner, claim_id, now, self.lease_s)
        claim = self.jobs.update_many({**query, model.ID: {"$in": picked}}, update)
        await self.calls.run("claim", bound_s, claim)
        read = self.jobs.find({model.ID: {"$in": picked}, model.CLAIM_ID: claim_id}).to_list()
        claimed = {doc[model.ID]: doc for doc in await self.calls.run("claim_read", bound_s, read)}
        jobs = [
            Job.from_batch_claim(claimed[c[model.ID]], c.get(model.ATTEMPT), self.owner, now,
                                 claimed_at=sent, claim_id=claim_id)
            for c in chosen if c[model.ID] in claimed
        ]  # fmt: skip
        return jobs or None

    async def claim_for_cancel(self, doc_id: Any) -> Job | None:
        return await self.claim(queries.targeted(doc_id, self.now(), self.owner), None)

    async def repair_fences(self) -> int:
        """Reset non-numeric ``fence`` values on claimable jobs (they make every claim fail)."""
        query = queries.bad_fence(self.now(), self.owner)
        outcome = await self._run(
            "repair_fences", self.jobs.update_many(query, queries.fence_repair())
        )
        return int(outcome.modified_count)

    # -- one job's writes (fenced) -----------------------------------------------------------

    async def start(self, job: Job, *, isolated: bool) -> None:
        """Write what the claim could not (a new run, the run-alone mark), if anything."""
        update = queries.start_update(job, isolated=isolated)
        if update is not None:
            await self._fenced("start", job, update)

    async def renew(self, job: Job, *, requeued: bool = False) -> Doc:
        """Extend the lease; the job's status and cancel fields, or :class:`LeaseLost`
        (:class:`JobRequeued` when a client set the job back to queued). ``requeued``: renew a
        re-queued job's lease while its thread handler, which cannot be stopped, runs on."""
        update = queries.renew_update(self.now(), self.lease_s)
        fence = queries.requeued_fence(job) if requeued else queries.fence(job)
        found = await self._run(
            "renew",
            self.jobs.find_one_and_update(fence, update, projection=queries.RENEW_PROJECTION),
        )
        if found is None:
            await self._lost(job, "renew")
        return dict(found)

    async def progress(self, job: Job, fraction: float, message: str | None) -> None:
        await self._fenced("progress", job, queries.progress_update(fraction, message, self.now()))

    async def requeue(self, job: Job, *, run_at: datetime | None, error: Doc | None) -> None:
        update = queries.requeue_update(job, run_at=run_at, error=error)
        await self._back_to_queued("requeue", job, update)

    async def hand_back(self, job: Job, *, run_at: datetime | None = None) -> None:
        await self._back_to_queued("hand_back", job, queries.hand_back_update(run_at))

    async def release(self, job: Job, *, finished: bool = False) -> bool:
        """Give up the lease of a job a client re-queued while this claim ran it (``finished``:
        its result is written); False when the claim no longer holds it anyway."""
        update = queries.released(self.now(), finished=finished, job=job)
        write = self.jobs.update_one(queries.requeued_fence(job), update)
        return bool((await self._run("release", write)).matched_count)

    async def _back_to_queued(self, name: str, job: Job, update: Doc) -> None:
        """Queue the job again, unless a client asked to cancel it meanwhile (during an outage,
        say): then :class:`CancelPending`, so the cancellation is recorded, not undone."""
        write = self.jobs.update_one(queries.fence_uncancelled(job), update)
        if (await self._run(name, write)).matched_count:
            return
        doc = await self._run("fence_check", self.jobs.find_one(queries.fence(job)))
        request = model.cancel_request(doc) if doc is not None else None
        if request is None:
            await self._lost(job, name)
        raise CancelPending(request.via, request.requested_at)

    async def finish(self, result: Result, *, renew: bool = True) -> None:
        """Write the result, derived from the job document in one command, then the final
        status, each only while this claim holds the job (``finisher.py`` does the same for
        many jobs at once).

        The result is written by an aggregation over ``jobs`` that matches the job under this
        claim and ``$merge``s the result document into ``results``: if the claim is gone (a newer
        claim, a document the client replaced or deleted, a database that came back empty), no
        result lands. ``renew`` first checks the fence and extends the lease over the writes; a
        caller whose lease is still fresh may skip it.
        """
        job = result.job
        if renew:
            await self.renew(job)
        doc, _ = await self.result_doc(result)
        await self.write_result(job, doc)
        update = queries.finish_update(
            job, result.status, result.finished_at, result.cancel, started=result.started
        )
        if not await self.write_status(job, update):
            await self.finish_lost(job, doc)

    async def result_doc(self, result: Result) -> tuple[Doc, int]:
        """The result document to write (a large value in GridFS) and its size in bytes."""
        job = result.job
        previous = None
        if job.run > 1:
            previous = await self._run(
                "result_read", self.results.find_one({model.JOB_ID: job.key})
            )
        return await self._storable(result, model.next_history(previous, job.run))

    async def write_status(self, job: Job, update: Doc) -> bool:
        """The final status, fenced on the claim; whether the claim still held."""
        outcome = await self._run("finish", self.jobs.update_one(queries.fence(job), update))
        return bool(outcome.matched_count)

    async def finish_lost(self, job: Job, doc: Doc) -> None:
        """The final status found the claim gone: unless a client re-queued the job (the run is
        over, the lease given up for the next run), delete a result that landed meanwhile and
        raise :class:`LeaseLost`."""
        if await self.release(job, finished=True):
            return
        await self._drop_own_result(job, doc.get("result_ref"))
        raise LeaseLost(f"job {job.key!r} (fence {job.fence}) is no longer ours (finish)")

    async def merge_results(self, written: list[tuple[Job, Doc]]) -> None:
        """Write the results of several jobs with one command, each derived from its own job
        under its own claim (a job whose claim is gone gets none)."""
        merge = queries.results_merge(written, into=self.results.name)
        await self._merge("results_write", merge)

    async def finished_under_claim(self, jobs: list[Job]) -> set[Any]:
        """Which of these jobs a final status was written for under their own claim."""
        query = queries.finished_under_claim(jobs)
        found = await self._run("finish_check", self.jobs.find(query, {model.ID: 1}).to_list())
        return {doc[model.ID] for doc in found}

    async def _merge(self, name: str, merge: list[Doc]) -> None:
        try:
            await self._run(name, self.jobs.aggregate(merge))
        except OperationFailure as exc:
            if exc.code != NO_MERGE_INDEX:
                raise
            # MongoDB came back without the indexes, and this write came first: make them.
            log.warning("result_indexes_missing", error=str(exc))
            await self.ensure_indexes()
            await self._run(name, self.jobs.aggregate(merge))

    async def write_result(self, job: Job, doc: Doc) -> None:
        """Write one job's result, derived from its job under this claim (``finish``)."""
        try:
            await self._merge(
                "result_write", queries.result_merge(job, doc, into=self.results.name)
            )
        except OperationFailure as exc:
            if exc.code != DUPLICATE_KEY:
                raise
            await self._take_over_slot(job, doc)

    async def _take_over_slot(self, job: Job, doc: Doc) -> None:
        """The ``job_id``'s result slot holds the result of another job document: one the
        client deleted (and inserted again under the same ``job_id``), a polling loop's, or a
        live job's (a job without ``job_id`` is keyed by its ``_id``, which another job may have
        taken as its ``job_id``). While this claim holds the job, a stale slot is taken over; a
        live job's is not (:class:`ResultRefused`)."""
        if not await self._exists(job.doc_id, queries.fence(job)):
            await self._lost(job, "result_write")
        stored = await self._run("result_read", self.results.find_one({model.JOB_ID: job.key}))
        other = stored.get(model.JOB_DOC_ID) if stored else None
        if other not in (None, job.doc_id) and await self._exists(other):
            raise ResultRefused(
                f"results already holds a document for job_id {job.key!r} that another job "
                f"(_id {other!r}) wrote; this run's result was not stored"
            )
        replace = self.results.replace_one({model.JOB_ID: job.key}, doc, upsert=True)
        await self._run("result_write", replace)

    async def _exists(self, doc_id: Any, query: Doc | None = None) -> bool:
        """Whether the job document exists (and matches ``query``, when given)."""
        where = query if query is not None else {model.ID: doc_id}
        found = await self._run("job_exists", self.jobs.find_one(where, {model.ID: 1}))
        return found is not None

    async def _drop_own_result(self, job: Job, ref: Any) -> None:
        """Delete the result this claim wrote, if it landed before the claim was taken away (a
        newer claim, or a new document the client wrote, writes its own), and the GridFS file
        uploaded for it (``ref``). A result is only ever kept for its own claim; what a crash
        leaves here is swept (``strays.py``)."""
        try:
            await self._run("result_drop", self.results.delete_one(queries.own_result(job)))
            await self._drop_file(ref)
        except PyMongoError as exc:
            log.warning("orphaned_result_not_dropped", error=str(exc))

    async def fail_without_result(self, job: Job, error: Doc) -> None:
        """End a job whose result cannot be stored: failed, the refusal on the job document."""
        await self._fenced("finish", job, queries.failed_without_result(job, error, self.now()))

    async def _fenced(self, name: str, job: Job, update: Doc) -> None:
        outcome = await self._run(name, self.jobs.update_one(queries.fence(job), update))
        if outcome.matched_count == 0:
            await self._lost(job, name)

    async def requeued(self, job: Job) -> bool:
        """Whether a client set the job back to queued while this claim held it."""
        found = await self._run(
            "requeue_check", self.jobs.find_one(queries.requeued_fence(job), {"_id": 1})
        )
        return found is not None

    async def _lost(self, job: Job, name: str) -> NoReturn:
        """The claim no longer holds the job: :class:`JobRequeued` if a client set it back to
        queued (the lease is still this claim's to give up), else :class:`LeaseLost`."""
        where = f"job {job.key!r} (fence {job.fence}) is no longer ours ({name})"
        if await self.requeued(job):
            raise JobRequeued(f"{where}: a client set it back to queued")
        raise LeaseLost(where)

    # -- queries ------------------------------------------------------------------------------

    async def earliest_due(self) -> datetime | None:
        """When the next delayed job becomes due, or ``None``."""
        query, sort = queries.earliest_due(self.now())
        doc = await self._run(
            "earliest_due", self.jobs.find_one(query, {model.RUN_AT: 1}, sort=sort)
        )
        due = doc.get(model.RUN_AT) if doc else None
        return due if isinstance(due, datetime) else None

    async def count_queued(self, timeout_s: float | None = None) -> int:
        count = self.jobs.count_documents(queries.queued())
        return int(await self.calls.run("count_queued", timeout_s or self.timeout_s, count))

    async def ping(self, timeout_s: float) -> None:
        await self.calls.run("ping", timeout_s, self.db.client.admin.command("ping"))

    async def load_resume_token(self, key: str = STREAM_STATE_ID) -> dict[str, Any] | None:
        doc = await self._run("token_load", self.state.find_one({"_id": key}))
        token = doc.get("resume_token") if doc else None
        return token if isinstance(token, dict) else None

    async def save_resume_token(
        self, token: Mapping[str, Any] | None, key: str = STREAM_STATE_ID
    ) -> None:
        update = {"$set": {"resume_token": token, "updated_at": self.now(), "owner": self.owner}}
        await self._run("token_save", self.state.update_one({"_id": key}, update, upsert=True))

    # -- result documents ---------------------------------------------------------------------

    async def _storable(self, result: Result, history: list[Doc]) -> tuple[Doc, int]:
        """The result document, with a large value moved to GridFS behind a reference, and its
        size."""
        doc = result.to_doc(history)
        size = model.encoded_size(doc)  # the one encoding of ours: it also checks the value
        if size <= self.result_inline_max_bytes or result.value is None:
            return doc, size
        offloaded = await self._offload(doc)
        return offloaded, model.encoded_size(offloaded)

    async def _offload(self, doc: Doc) -> Doc:
        bucket = AsyncGridFSBucket(self.db, bucket_name=RESULTS_BUCKET)
        payload = bson.encode({"result": doc.pop(model.RESULT)})
        metadata = {
            model.JOB_ID: doc[model.JOB_ID],
            model.FENCE: doc[model.FENCE],
            model.CLAIM_ID: doc[model.CLAIM_ID],
        }
        file_id = await self._run(
            "gridfs_upload",
            bucket.upload_from_stream(f"{doc[model.JOB_ID]}.bson", payload, metadata=metadata),
        )
        doc[model.RESULT] = None
        doc["result_ref"] = {
            "gridfs_bucket": RESULTS_BUCKET,
            "file_id": file_id,
            "bytes": len(payload),
            "encoding": "bson:{result}",
        }
        return doc

    async def _drop_file(self, ref: Any) -> None:
        """Delete the GridFS file behind a dropped result's ``result_ref``, if any."""
        if not isinstance(ref, Mapping) or "file_id" not in ref:
            return
        bucket = AsyncGridFSBucket(self.db, bucket_name=ref.get("gridfs_bucket", RESULTS_BUCKET))
        try:
            await self._run("gridfs_delete", bucket.delete(ref["file_id"]))
        except NoFile:
            return


def _requeued_while_running(doc: Doc) -> bool:
    """Queued, yet still naming the owner of a claim that never finished: a client re-queued it
    while it ran (or while its result was being recorded)."""
    queued = doc.get(model.STATUS) in (None, model.Status.QUEUED.value)
    return queued and bool(doc.get(model.LEASE_OWNER)) and doc.get(model.FINISHED_AT) is None


async def load_large_result(db: AsyncDatabase[dict[str, Any]], ref: Mapping[str, Any]) -> Any:
    """Read back a result stored in GridFS from its ``result_ref``."""
    bucket = AsyncGridFSBucket(db, bucket_name=ref.get("gridfs_bucket", RESULTS_BUCKET))
    stream = await bucket.open_download_stream(ref["file_id"])
    return bson.decode(await stream.read())["result"]
