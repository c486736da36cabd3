"""The client side: submit, cancel, retry and list jobs, and wait for results (CLI, demo, tests).

Waiting watches ``results`` with a change stream opened *before* looking for results that
already exist, so a result written between the two is never missed; nothing polls.

Cancelling and retrying only write the job document, in one atomic update each whose filter
checks the job's status, so a request never races the reactor into a state it did not ask for;
the reactor does the rest (stops the run and writes a ``cancelled`` result; starts a new run).
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio
import bson
import bson.errors
from pymongo import ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from reactor import fleet, joblog, model, queries, workdir
from reactor.errors import (
    ClientError,
    DuplicateJob,
    JobNotFound,
    JobNotStorable,
    JobStateConflict,
    ReactorError,
    UnknownCommand,
)
from reactor.registry import Handler, Registry

Doc = dict[str, Any]

TERMINAL = sorted(status.value for status in model.TERMINAL_STATUSES)
STATUSES = [status.value for status in model.Status]


def new_job(
    command: str,
    args: Mapping[str, Any] | None = None,
    job_id: str | None = None,
    *,
    priority: float | None = None,
    run_at: datetime | None = None,
) -> Doc:
    """A job document in the format clients write (``priority`` and ``run_at`` only when given).

    ``priority`` is any finite number (:data:`reactor.model.PRIORITY_RULE`); anything else is
    refused with :class:`ClientError`, in the words the reactor would use for the document.
    """
    if priority is not None and (problem := model.priority_problem(priority)) is not None:
        raise ClientError(problem)
    doc: Doc = {
        model.JOB_ID: job_id or uuid.uuid4().hex,
        model.COMMAND: command,
        model.ARGS: dict(args or {}),
    }
    if priority is not None:
        doc[model.PRIORITY] = priority
    if run_at is not None:
        doc[model.RUN_AT] = run_at
    return doc


async def submit(
    db: AsyncDatabase[Doc],
    command: str,
    args: Mapping[str, Any] | None = None,
    *,
    job_id: str | None = None,
    jobs: str = "jobs",
    priority: float | None = None,
    run_at: datetime | None = None,
) -> str:
    """Insert one job and return its ``job_id``; :class:`DuplicateJob` if the id is taken."""
    doc = new_job(command, args, job_id, priority=priority, run_at=run_at)
    key = str(doc[model.JOB_ID])
    check_storable(doc)
    # The unique index (ensured by the reactor) decides; the look-up first also catches a
    # duplicate in a database no reactor has prepared yet.
    if await db[jobs].find_one({model.JOB_ID: key}, {model.ID: 1}) is not None:
        raise _duplicate(key)
    try:
        await db[jobs].insert_one(doc)
    except DuplicateKeyError:
        raise _duplicate(key) from None
    return key


async def cancel(
    db: AsyncDatabase[Doc], job_id: str, *, jobs: str = "jobs", now: datetime | None = None
) -> Doc:
    """Ask for a job's cancellation (``cancel_requested``); return the job document after it.

    Works on a queued or running job. :class:`JobNotFound` for an unknown id,
    :class:`JobStateConflict` for a finished job. Asking twice keeps the first request's time.
    """
    when = now or datetime.now(UTC)
    after = await db[jobs].find_one_and_update(
        {model.JOB_ID: job_id, model.STATUS: {"$nin": TERMINAL}},
        {"$set": {model.CANCEL_REQUESTED: True}, "$min": {model.CANCEL_REQUESTED_AT: when}},
        return_document=ReturnDocument.AFTER,
    )
    if after is None:
        job = await _existing(db, job_id, jobs)
        raise JobStateConflict(
            f"job {job_id!r} is already {job[model.STATUS]}: only a queued or running job can "
            f"be cancelled (see: reactor status {job_id})"
        )
    return after


async def retry(db: AsyncDatabase[Doc], job_id: str, *, jobs: str = "jobs") -> Doc:
    """Queue a finished job again, which starts its next run; return the job before the update.

    Only a ``succeeded``, ``failed`` or ``cancelled`` job: :class:`JobStateConflict` for a queued
    or running one, :class:`JobNotFound` for an unknown id. Clears the cancel request.
    """
    before = await db[jobs].find_one_and_update(
        {model.JOB_ID: job_id, model.STATUS: {"$in": TERMINAL}},
        {
            "$set": {model.STATUS: model.Status.QUEUED.value},
            "$unset": {model.CANCEL_REQUESTED: "", model.CANCEL_REQUESTED_AT: ""},
        },
        return_document=ReturnDocument.BEFORE,
    )
    if before is None:
        job = await _existing(db, job_id, jobs)
        status = job.get(model.STATUS) or model.Status.QUEUED.value
        raise JobStateConflict(
            f"job {job_id!r} is {status}, not finished: only a succeeded, failed or cancelled "
            f"job can be retried (cancel it first with: reactor cancel {job_id})"
        )
    return before


async def list_jobs(
    db: AsyncDatabase[Doc],
    *,
    status: str | None = None,
    command: str | None = None,
    limit: int = 20,
    jobs: str = "jobs",
    before: Any = None,
) -> list[Doc]:
    """Jobs newest first (by insertion), optionally of one status and one command, and only
    those inserted before the job whose ``_id`` is ``before`` (the next page).

    ``status="queued"`` includes jobs without a status; ``status="failed"`` lists the dead
    letters: jobs that used up their attempts or failed for good. Served by the listing
    indexes (``queries.LISTING_INDEXES``).
    """
    query = queries.job_listing(status, command, before)
    cursor = db[jobs].find(query, sort=queries.NEWEST_FIRST, limit=limit)
    return [doc async for doc in cursor]


def check_storable(
    doc: Mapping[str, Any], *, what: str = "the job", error: type[ReactorError] = JobNotStorable
) -> None:
    """``error`` (:class:`JobNotStorable`) unless ``doc`` encodes as BSON (checked before it
    is sent)."""
    try:
        bson.encode(doc)
    except (bson.errors.BSONError, UnicodeError, OverflowError, ValueError, TypeError) as exc:
        raise error(
            f"{what} cannot be stored as a BSON document: {type(exc).__name__}: {str(exc)[:300]}"
        ) from None


def check_args(registry: Registry, command: str, args: Mapping[str, Any]) -> Handler:
    """The handler of ``command`` after checking ``args`` against its signature, before anything
    is written: :class:`UnknownCommand` or :class:`InvalidArguments`."""
    handler = registry.get(command)
    if handler is None:
        known = ", ".join(registry.names()) or "none"
        raise UnknownCommand(f"unknown command {command!r}; known commands: {known}")
    handler.arguments.check(command, args)
    return handler


async def job_log(
    db: AsyncDatabase[Doc],
    jobs_root: Path,
    job_id: str,
    *,
    run: int | None = None,
    after: int = 0,
    limit: int = 1000,
    jobs: str = "jobs",
) -> tuple[int, list[Doc], int]:
    """A job's own log (:mod:`reactor.joblog`): the run shown (its latest by default), up to
    ``limit`` lines from line ``after`` on, and the next line number. :class:`JobNotFound`."""
    job = await _existing(db, job_id, jobs)
    shown = run if run is not None else run_of(job)
    directory = workdir.place(jobs_root, job_id, job.get(model.WORKFLOW)).directory
    path = joblog.path_of(directory, shown)
    lines, next_line = await anyio.to_thread.run_sync(
        functools.partial(joblog.read_lines, path, after=after, limit=limit)
    )
    return shown, lines, next_line


async def workers(
    db: AsyncDatabase[Doc], *, ttl_s: float, now: datetime | None = None
) -> list[Doc]:
    """The reactors seen within ``ttl_s`` (``reactor_workers``), by name; ``now``: MongoDB's
    clock when the caller knows it (``last_seen`` is written on it), else this host's."""
    return await fleet.members(db, ttl_s, now)


def run_of(doc: Mapping[str, Any] | None) -> int:
    """A job's or result's run number (absent means the first run)."""
    value = (doc or {}).get(model.RUN)
    return value if isinstance(value, int) and not isinstance(value, bool) else 1


async def wait_for_results(
    db: AsyncDatabase[Doc],
    job_ids: Iterable[str],
    *,
    timeout_s: float,
    results: str = "results",
    min_runs: Mapping[str, int] | None = None,
) -> dict[str, Doc]:
    """Wait until every job in ``job_ids`` has a result; raise ``TimeoutError`` past the limit.

    With ``min_runs``, a result counts only once it belongs to at least that run of its job
    (an earlier run's result is still there while a re-run or a cancellation is under way).
    """
    wanted = set(job_ids)
    needed = dict(min_runs or {})
    found: dict[str, Doc] = {}

    def take(doc: Doc | None) -> None:
        if doc is not None and run_of(doc) >= needed.get(doc[model.JOB_ID], 1):
            found[doc[model.JOB_ID]] = doc

    pipeline = [{"$match": {"fullDocument.job_id": {"$in": sorted(wanted)}}}]
    with anyio.fail_after(timeout_s):
        async with await db[results].watch(pipeline, full_document="updateLookup") as stream:
            async for doc in db[results].find({model.JOB_ID: {"$in": sorted(wanted)}}):
                take(doc)
            while not wanted <= found.keys():
                change = await stream.next()
                take(change.get("fullDocument"))
    return found


async def wait_for_result(
    db: AsyncDatabase[Doc],
    job_id: str,
    *,
    timeout_s: float,
    results: str = "results",
    min_run: int = 1,
) -> Doc:
    """Wait for one job's result document (of run ``min_run`` or later)."""
    found = await wait_for_results(
        db, [job_id], timeout_s=timeout_s, results=results, min_runs={job_id: min_run}
    )
    return found[job_id]


async def job_status(
    db: AsyncDatabase[Doc], job_id: str, *, jobs: str = "jobs", results: str = "results"
) -> tuple[Doc | None, Doc | None]:
    """The job document and its result document, either of which may be missing."""
    job = await db[jobs].find_one({model.JOB_ID: job_id})
    result = await db[results].find_one({model.JOB_ID: job_id})
    return job, result


async def _existing(db: AsyncDatabase[Doc], job_id: str, jobs: str) -> Doc:
    job = await db[jobs].find_one({model.JOB_ID: job_id})
    if job is None:
        raise JobNotFound(f"no job with job_id {job_id!r} (see: reactor list)")
    return job


def _duplicate(job_id: str) -> DuplicateJob:
    return DuplicateJob(
        f"a job with job_id {job_id!r} already exists (see: reactor status {job_id}; to run it "
        f"again: reactor retry {job_id})"
    )
