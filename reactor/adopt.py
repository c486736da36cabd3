"""Adopting the collections a polling loop left behind: finished jobs are not run again.

A polling loop's jobs have no ``status``, which the reactor reads as queued. A job without
``status`` whose ``job_id`` already has a result is *adopted* instead: its status is set from that
result (``job_adopted`` in the log, ``reactor_jobs_adopted`` in the metrics). The result's own
``status`` is used when it is one of ours; otherwise a result holding ``error``, ``exception`` or
``traceback`` counts as failed and any other as succeeded. Startup adopts before it claims;
``reactor migrate --check`` reports what it would do and ``--apply`` does it.

Duplicate ``job_id`` values (which the unique indexes forbid) stop startup with a message naming
them and saying how to fix them, instead of a traceback.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pymongo import UpdateOne
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import OperationFailure

from reactor import model, queries
from reactor.errors import ConfigError
from reactor.index_plan import Decision
from reactor.logging import get_logger
from reactor.store import Store

log = get_logger("reactor.adopt")

BATCH = 500
DUPLICATES_SHOWN = 10
DUPLICATE_KEY = 11000


@dataclass
class Plan:
    """What adoption found (and, when applied, did)."""

    examined: int = 0  # jobs without status
    adopted: Counter[str] = field(default_factory=Counter)  # by the status they get
    to_run: int = 0  # jobs without status and without result: they will run

    def describe(self, *, applied: bool) -> str:
        verb = "adopted" if applied else "would adopt"
        statuses = ", ".join(f"{n} {status}" for status, n in sorted(self.adopted.items()))
        lines = [
            f"jobs without status: {self.examined}",
            f"{verb}: {sum(self.adopted.values())}" + (f" ({statuses})" if statuses else ""),
            f"{'will' if applied else 'would'} run (no result yet): {self.to_run}",
        ]
        return "\n".join(lines)


def adopted_status(result: dict[str, Any]) -> str:
    """The status an old job takes from its result (``model.result_status``)."""
    return model.result_status(result)


async def adopt(
    store: Store, *, apply: bool, on_adopted: Callable[[int], None] | None = None
) -> Plan:
    """Adopt (or with ``apply=False`` only count) every job without status that has a result."""
    plan = Plan()
    last_id: Any = None
    while True:
        batch = await _statusless(store, last_id)
        if not batch:
            return plan
        last_id = batch[-1][model.ID]
        results = await _results_of(store, batch)
        operations = []
        now = store.now()
        for job in batch:
            plan.examined += 1
            result = results.get(str(job.get(model.JOB_ID)))
            if result is None:
                plan.to_run += 1
                continue
            status = adopted_status(result)
            plan.adopted[status] += 1
            finished = result.get(model.FINISHED_AT)
            finished_at = finished if isinstance(finished, datetime) else now
            operations.append(
                UpdateOne(
                    {model.ID: job[model.ID], model.STATUS: None},
                    queries.adopt_update(status, finished_at, now),
                )
            )
            if apply:
                log.info("job_adopted", job_id=job[model.JOB_ID], status=status)
        if apply and operations:
            await store.calls.run(
                "adopt", store.timeout_s, store.jobs.bulk_write(operations, ordered=False)
            )
            if on_adopted is not None:
                on_adopted(len(operations))


async def _statusless(store: Store, after: Any) -> list[dict[str, Any]]:
    query: dict[str, Any] = {model.STATUS: None}
    if after is not None:
        query[model.ID] = {"$gt": after}
    cursor = store.jobs.find(query, {model.JOB_ID: 1}).sort(model.ID, 1).limit(BATCH)
    found: list[dict[str, Any]] = await store.calls.run(
        "adopt_scan", store.timeout_s, cursor.to_list()
    )
    return found


async def _results_of(store: Store, jobs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    ids = [job[model.JOB_ID] for job in jobs if isinstance(job.get(model.JOB_ID), str)]
    if not ids:
        return {}
    projection = {
        model.JOB_ID: 1,
        model.STATUS: 1,
        model.FINISHED_AT: 1,
        **dict.fromkeys(model.FAILURE_FIELDS, 1),
    }
    cursor = store.results.find({model.JOB_ID: {"$in": ids}}, projection)
    docs = await store.calls.run("adopt_results", store.timeout_s, cursor.to_list())
    return {doc[model.JOB_ID]: doc for doc in docs}


async def duplicates(
    coll: AsyncCollection[dict[str, Any]], timeout_s: float = 60.0
) -> list[tuple[str, int]]:
    """``job_id`` values held by more than one document of ``coll``, with their counts."""
    pipeline: list[dict[str, Any]] = [
        {"$match": {model.JOB_ID: {"$type": "string"}}},
        {"$group": {"_id": f"${model.JOB_ID}", "n": {"$sum": 1}}},
        {"$match": {"n": {"$gt": 1}}},
        {"$sort": {"n": -1, "_id": 1}},
    ]
    cursor = await coll.aggregate(pipeline)
    docs = await cursor.to_list()
    return [(str(doc["_id"]), int(doc["n"])) for doc in docs]


async def ensure_indexes(store: Store, *, replace: bool = False) -> list[Decision]:
    """``Store.ensure_indexes``, with duplicate ``job_id`` values explained (ConfigError)."""
    try:
        return await store.ensure_indexes(replace=replace)
    except OperationFailure as exc:
        if exc.code != DUPLICATE_KEY:
            raise
        raise ConfigError(await duplicates_message(store)) from None


async def duplicates_message(store: Store) -> str:
    parts = []
    for coll in (store.jobs, store.results):
        found = await duplicates(coll)
        if found:
            shown = ", ".join(
                f"{job_id!r} ({n} documents)" for job_id, n in found[:DUPLICATES_SHOWN]
            )
            more = (
                f" and {len(found) - DUPLICATES_SHOWN} more"
                if len(found) > DUPLICATES_SHOWN
                else ""
            )
            parts.append(f"{coll.name} holds duplicate job_id values: {shown}{more}")
    found_text = "; ".join(parts) or "a unique job_id index cannot be built"
    return (
        f"{found_text}. Each job_id must name one job and one result: keep one document per "
        "job_id and delete or rename the others (for example in mongosh: "
        "db.jobs.find({job_id: '<id>'})), then start again; `reactor migrate --check` lists them"
    )
