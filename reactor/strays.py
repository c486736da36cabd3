"""Large results' files that no result refers to any more: found and deleted.

A result larger than ``REACTOR_RESULT_INLINE_MAX_BYTES`` is uploaded to GridFS (bucket
``results_fs``) before its result document is written. The file is left behind when that write
does not land (the claim was lost, the job replaced or gone, MongoDB came back empty) and the
reactor dies before deleting it, and when a later run's result replaces the one that referred to
it. So every ``REACTOR_STRAY_SWEEP_S`` (and once at startup), each file older than
:data:`MIN_AGE_S` whose result (by its metadata's ``job_id``) does not refer to it is deleted, a
batch at a time. Files are only ever the reactor's own; results are never deleted here (a client
may keep results of jobs it deleted on purpose).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import anyio
from gridfs import AsyncGridFSBucket
from gridfs.errors import NoFile
from pymongo.errors import PyMongoError

from reactor import model
from reactor.logging import get_logger
from reactor.store import RESULTS_BUCKET, Store

log = get_logger("reactor.strays")

MIN_AGE_S = 600.0  # a younger file may belong to a result write still on its way
BATCH = 200


class StraySweep:
    def __init__(self, store: Store, every_s: float) -> None:
        self._store = store
        self._every_s = every_s

    async def run(self) -> None:
        """Sweep now and every ``every_s`` (a task; never returns)."""
        while True:
            try:
                deleted = await self.sweep_once()
                if deleted:
                    log.info("stray_files_deleted", files=deleted)
            except PyMongoError as exc:  # MongoDB away: the next sweep tries again
                log.warning("stray_sweep_failed", error=str(exc))
            await anyio.sleep(self._every_s)

    async def sweep_once(self, min_age_s: float = MIN_AGE_S) -> int:
        """Delete the stray files older than ``min_age_s``, a page at a time; how many."""
        store = self._store
        files = store.db[f"{RESULTS_BUCKET}.files"]
        older: dict[str, Any] = {"uploadDate": {"$lt": store.now() - timedelta(seconds=min_age_s)}}
        deleted = 0
        while True:
            cursor = files.find(older, {"metadata": 1}).sort("_id", 1).limit(BATCH)
            page = await store.calls.run("stray_files", store.timeout_s, cursor.to_list())
            for found in page:
                if not await self._referenced(found):
                    deleted += await self._delete(found["_id"])
            if len(page) < BATCH:
                return deleted
            older["_id"] = {"$gt": page[-1]["_id"]}

    async def _referenced(self, found: dict[str, Any]) -> bool:
        metadata = found.get("metadata") or {}
        query = {model.JOB_ID: metadata.get(model.JOB_ID), "result_ref.file_id": found["_id"]}
        store = self._store
        result = store.results.find_one(query, {"_id": 1})
        return await store.calls.run("stray_check", store.timeout_s, result) is not None

    async def _delete(self, file_id: Any) -> int:
        bucket = AsyncGridFSBucket(self._store.db, bucket_name=RESULTS_BUCKET)
        try:
            await self._store.calls.run("stray_delete", self._store.timeout_s,
                                        bucket.delete(file_id))  # fmt: skip
        except NoFile:
            return 0
        return 1
