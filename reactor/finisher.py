"""Finishing jobs together: the final writes of jobs that finish at once share two commands.

A finished job needs two writes: its result, derived from its job document (a ``$merge`` from
``jobs`` into ``results`` that lands only while the claim holds the job), and its final status,
fenced on the claim. Written one job at a time that is two round trips per job; under load most
of them wait for MongoDB anyway. So finished jobs queue here, and one task writes whatever has
queued whenever the previous batch is done (natural batching: a lone job is written at once):

- one aggregation ``$merge``s the results of the whole batch, each derived from its own job
  document (``queries.results_merge``);
- one bulk write sets the statuses, each fenced on its own claim: MongoDB 8.0's cross-collection
  ``bulkWrite`` (``client.bulk_write``, whose verbose results say which job matched), or, on an
  older server, the collection's ``bulk_write`` (which only counts them: the few that did not
  match are found by a read).

Each job then learns whether its claim still held (a job whose claim was lost takes its own slow
path: ``Store.finish_lost``). When the batch's ``$merge`` is refused as a whole (a validator, a
slot held by another job), its jobs are written one by one, so that each gets its own answer.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

import anyio
from pymongo import UpdateOne
from pymongo.asynchronous.mongo_client import AsyncMongoClient
from pymongo.errors import ClientBulkWriteException, InvalidOperation, OperationFailure
from pymongo.results import ClientBulkWriteResult

from reactor import queries
from reactor.driver import is_transient
from reactor.logging import get_logger
from reactor.model import Result
from reactor.store import Store

log = get_logger("reactor.finisher")

BATCH_MAX = 64  # jobs in one batch
BATCH_MAX_BYTES = 8_000_000  # of result documents in one batch (a command holds 16 MB)

Doc = dict[str, Any]


@dataclass
class _Finish:
    result: Result
    doc: Doc
    size: int
    update: Doc
    done: anyio.Event = field(default_factory=anyio.Event)
    held: bool = False  # the status write matched: the claim held
    error: BaseException | None = None


class Finisher:
    """Queues finished jobs and writes them in batches (a task of the service)."""

    def __init__(self, store: Store, client: AsyncMongoClient[Doc]) -> None:
        self._store = store
        self._client = client
        self._pending: deque[_Finish] = deque()
        self._queued = anyio.Event()
        self._client_bulk = True  # until the server says it has no bulkWrite command

    async def finish(self, result: Result, *, renew: bool) -> None:
        """Record ``result`` (its result document, then its final status); raises as
        :meth:`Store.finish` does when the claim was lost."""
        job = result.job
        if renew:
            await self._store.renew(job)
        doc, size = await self._store.result_doc(result)
        update = queries.finish_update(
            job, result.status, result.finished_at, result.cancel, started=result.started
        )
        entry = _Finish(result, doc, size, update)
        self._pending.append(entry)
        self._queued.set()
        await entry.done.wait()
        if entry.error is not None:
            raise entry.error
        if not entry.held:
            await self._store.finish_lost(job, doc)

    async def run(self) -> None:
        """Write queued finishes, a batch at a time (never returns)."""
        while True:
            await self._queued.wait()
            self._queued = anyio.Event()
            while self._pending:
                batch = self._take()
                try:
                    await self._write(batch)
                except Exception as exc:  # each job's recorder decides (retry, refuse, ...)
                    for entry in batch:
                        entry.error = entry.error or exc
                finally:
                    for entry in batch:
                        entry.done.set()

    def _take(self) -> list[_Finish]:
        batch: list[_Finish] = []
        size = 0
        while self._pending and len(batch) < BATCH_MAX:
            if batch and size + self._pending[0].size > BATCH_MAX_BYTES:
                break
            entry = self._pending.popleft()
            batch.append(entry)
            size += entry.size
        return batch

    async def _write(self, batch: list[_Finish]) -> None:
        if len(batch) == 1:
            await self._write_one(batch[0])
            return
        try:
            await self._store.merge_results([(e.result.job, e.doc) for e in batch])
        except OperationFailure as exc:
            if is_transient(exc):
                raise
            for entry in batch:  # refused as a whole: each job on its own, for its own answer
                await self._write_one(entry)
            return
        await self._write_statuses(batch)

    async def _write_one(self, entry: _Finish) -> None:
        try:
            await self._store.write_result(entry.result.job, entry.doc)
            entry.held = await self._store.write_status(entry.result.job, entry.update)
        except Exception as exc:
            entry.error = exc

    async def _write_statuses(self, batch: list[_Finish]) -> None:
        if self._client_bulk:
            try:
                await self._client_statuses(batch)
                return
            except InvalidOperation:  # the server is older than 8.0: no bulkWrite command
                self._client_bulk = False
                log.info("client_bulk_write_unavailable", fallback="collection.bulk_write")
        await self._collection_statuses(batch)

    async def _client_statuses(self, batch: list[_Finish]) -> None:
        namespace = self._store.jobs.full_name
        models = [UpdateOne(queries.fence(e.result.job), e.update, namespace=namespace)
                  for e in batch]  # fmt: skip
        write = self._client.bulk_write(models, ordered=False, verbose_results=True)
        result: ClientBulkWriteResult | None
        try:
            result = await self._store.calls.run("finish", self._store.timeout_s, write)
        except ClientBulkWriteException as exc:
            if exc.error is not None or exc.write_concern_errors:
                raise
            _charge_write_errors(batch, exc.details.get("writeErrors"))
            result = exc.partial_result
        updates = result.update_results if result is not None else {}
        for index, entry in enumerate(batch):
            entry.held = index in updates and updates[index].matched_count == 1

    async def _collection_statuses(self, batch: list[_Finish]) -> None:
        jobs = self._store.jobs
        models = [UpdateOne(queries.fence(e.result.job), e.update) for e in batch]
        write = jobs.bulk_write(models, ordered=False)
        result = await self._store.calls.run("finish", self._store.timeout_s, write)
        if result.matched_count == len(batch):
            for entry in batch:
                entry.held = True
            return
        held = await self._store.finished_under_claim([e.result.job for e in batch])
        for entry in batch:
            entry.held = entry.result.job.doc_id in held


def _charge_write_errors(batch: list[_Finish], errors: Any) -> None:
    """Give each op's own error to its job (a bulkWrite reports them by index)."""
    found = errors.values() if isinstance(errors, dict) else errors or []
    for error in found:
        index, code = error.get("idx"), error.get("code")
        if isinstance(index, int) and 0 <= index < len(batch):
            batch[index].error = OperationFailure(str(error.get("errmsg")), code, dict(error))
