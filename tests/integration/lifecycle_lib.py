"""Waiting on job and result documents through change streams (no polling)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anyio
from pymongo.asynchronous.collection import AsyncCollection

Doc = dict[str, Any]


async def wait_for_doc(
    coll: AsyncCollection[Doc],
    job_id: str | None,
    until: Callable[[Doc], bool],
    *,
    timeout_s: float,
    doc_id: Any = None,
) -> Doc:
    """The document of ``job_id`` (or with ``_id`` ``doc_id``) once ``until`` holds for it."""
    key = {"job_id": job_id} if doc_id is None else {"_id": doc_id}
    pipeline = [{"$match": {f"fullDocument.{k}": v for k, v in key.items()}}]
    with anyio.fail_after(timeout_s):
        async with await coll.watch(pipeline, full_document="updateLookup") as stream:
            doc = await coll.find_one(key)
            while doc is None or not until(doc):
                change = await stream.next()
                doc = change.get("fullDocument")
    return doc


def running(doc: Doc) -> bool:
    return doc.get("status") == "running"


def run_done(run: int) -> Callable[[Doc], bool]:
    """A result of run ``run`` (or later)."""
    return lambda doc: doc.get("run", 1) >= run and doc.get("status") is not None
