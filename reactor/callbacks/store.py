"""Callback deliveries in MongoDB: finding the due ones, taking one, recording an attempt.

A delivery lives in the ``callback`` field of the job or workflow that asked for it
(``model.py``). Taking one is a ``find_one_and_update`` that bumps ``attempts`` and moves
``due_at`` to when the attempt is given up for lost, so two reactors never send one attempt; a
record only lands for the attempt it describes (``id`` and ``attempts`` checked). The job's or
workflow's own fields are never touched.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from bson import json_util
from pymongo import ReturnDocument
from pymongo.asynchronous.collection import AsyncCollection

from reactor import model as job_model
from reactor.callbacks import model
from reactor.callbacks.model import DeliveryState, Due, due_of
from reactor.store import Store
from reactor.workflows import model as workflow_model

Doc = dict[str, Any]
KINDS = ("job", "workflow")
PENDING = DeliveryState.PENDING.value
WORKFLOW_FIELDS = (
    workflow_model.WORKFLOW_ID,
    workflow_model.STATUS,
    workflow_model.RUN,
    workflow_model.RESULT,
    workflow_model.ERROR,
    workflow_model.STEP_STATES,
    workflow_model.PROGRESS,
    workflow_model.CREATED_AT,
    workflow_model.STARTED_AT,
    workflow_model.FINISHED_AT,
    workflow_model.DURATION_MS,
)


# A delivery the reactor wrote (a client's stray ``callback`` field without an id is not one).
PENDING_DELIVERY: Doc = {model.STATE: PENDING, model.ID: {"$type": "string"}}


def due_filter(now: datetime, owner: str, grace_s: float) -> Doc:
    """Pending deliveries this reactor may send now: its own once due, others' a grace later."""
    return {
        **PENDING_DELIVERY,
        "$or": [
            {model.OWNER: owner, model.DUE_AT: {"$lte": now}},
            {model.DUE_AT: {"$lte": now - timedelta(seconds=grace_s)}},
        ],
    }


class CallbackStore:
    def __init__(self, store: Store, workflows: AsyncCollection[Doc]) -> None:
        self._store = store
        self._collections = {"job": store.jobs, "workflow": workflows}

    def now(self) -> datetime:
        """MongoDB's time, as the reactor's leases use it: due times are judged by it."""
        return self._store.now()

    async def _run(self, name: str, call: Any) -> Any:
        return await self._store.calls.run(name, self._store.timeout_s, call)

    async def take(
        self, kind: str, now: datetime, owner: str, grace_s: float, attempt_s: float
    ) -> Doc | None:
        """Take the next due delivery of ``kind``: its document after the take, or ``None``."""
        update = {
            "$set": {
                model.DUE_AT: now + timedelta(seconds=attempt_s),
                model.OWNER: owner,
                f"{model.CALLBACK}.updated_at": now,
            },
            "$inc": {model.ATTEMPTS: 1},
        }
        return await self._run(  # type: ignore[no-any-return]
            "callback_take",
            self._collections[kind].find_one_and_update(
                due_filter(now, owner, grace_s),
                update,
                sort=[(model.DUE_AT, 1)],
                return_document=ReturnDocument.AFTER,
            ),
        )

    async def record(self, kind: str, doc: Mapping[str, Any], fields: Mapping[str, Any]) -> bool:
        """Record how the attempt just made went, if it is still the current one."""
        callback = doc[model.CALLBACK]
        query = {"_id": doc["_id"], model.ID: callback["id"], model.ATTEMPTS: callback["attempts"]}
        changes = {**fields, "updated_at": self.now()}
        update = {"$set": {f"{model.CALLBACK}.{k}": v for k, v in changes.items()}}
        outcome = await self._run(
            "callback_record", self._collections[kind].update_one(query, update)
        )
        return bool(outcome.matched_count)

    async def earliest(self, kind: str, owner: str) -> tuple[Due | None, Due | None]:
        """The earliest pending delivery of ``kind`` this reactor owns, and of anyone's."""
        coll = self._collections[kind]
        found = []
        for query in ({**PENDING_DELIVERY, model.OWNER: owner}, PENDING_DELIVERY):
            doc = await self._run(
                "callback_due",
                coll.find_one(query, {model.CALLBACK: 1}, sort=[(model.DUE_AT, 1)]),
            )
            found.append(due_of((doc or {}).get(model.CALLBACK)))
        return found[0], found[1]

    async def body(self, kind: str, doc: Mapping[str, Any]) -> bytes:
        """What is POSTed: the job's result document, or the workflow's outcome, as JSON."""
        if kind == "workflow":
            payload: Any = {name: doc.get(name) for name in WORKFLOW_FIELDS}
        else:
            key = doc.get(job_model.JOB_ID)
            payload = await self._run(
                "callback_result",
                self._store.results.find_one({job_model.JOB_ID: key}, {"_id": 0}),
            )
            if payload is None:  # a job whose result MongoDB refused: its own fields tell
                names = (job_model.JOB_ID, job_model.STATUS, job_model.RUN, job_model.ERROR)
                payload = {name: doc.get(name) for name in names}
        return json_util.dumps(payload, json_options=json_util.RELAXED_JSON_OPTIONS).encode()
