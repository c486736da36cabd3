"""The client side: submit jobs and wait for their results (CLI, demo, tests, benchmarks).

Waiting watches ``results`` with a change stream opened *before* looking for results that
already exist, so a result written between the two is never missed; nothing polls.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from typing import Any

import anyio
from pymongo.asynchronous.database import AsyncDatabase

from reactor import model

Doc = dict[str, Any]


def new_job(command: str, args: Mapping[str, Any] | None = None, job_id: str | None = None) -> Doc:
    """A job document in the format clients write."""
    return {
        model.JOB_ID: job_id or uuid.uuid4().hex,
        model.COMMAND: command,
        model.ARGS: dict(args or {}),
    }


async def submit(
    db: AsyncDatabase[Doc],
    command: str,
    args: Mapping[str, Any] | None = None,
    *,
    job_id: str | None = None,
    jobs: str = "jobs",
) -> str:
    """Insert one job and return its ``job_id``."""
    doc = new_job(command, args, job_id)
    await db[jobs].insert_one(doc)
    return str(doc[model.JOB_ID])


async def wait_for_results(
    db: AsyncDatabase[Doc], job_ids: Iterable[str], *, timeout_s: float, results: str = "results"
) -> dict[str, Doc]:
    """Wait until every job in ``job_ids`` has a result; raise ``TimeoutError`` past the limit."""
    wanted = set(job_ids)
    found: dict[str, Doc] = {}
    pipeline = [{"$match": {"fullDocument.job_id": {"$in": sorted(wanted)}}}]
    with anyio.fail_after(timeout_s):
        async with await db[results].watch(pipeline, full_document="updateLookup") as stream:
            async for doc in db[results].find({model.JOB_ID: {"$in": sorted(wanted)}}):
                found[doc[model.JOB_ID]] = doc
            while not wanted <= found.keys():
                change = await stream.next()
                latest = change.get("fullDocument")
                if latest is not None:
                    found[latest[model.JOB_ID]] = latest
    return found


async def wait_for_result(
    db: AsyncDatabase[Doc], job_id: str, *, timeout_s: float, results: str = "results"
) -> Doc:
    """Wait for one job's result document."""
    found = await wait_for_results(db, [job_id], timeout_s=timeout_s, results=results)
    return found[job_id]


async def job_status(
    db: AsyncDatabase[Doc], job_id: str, *, jobs: str = "jobs", results: str = "results"
) -> tuple[Doc | None, Doc | None]:
    """The job document and its result document, either of which may be missing."""
    job = await db[jobs].find_one({model.JOB_ID: job_id})
    result = await db[results].find_one({model.JOB_ID: job_id})
    return job, result
