"""Reading and writing workflows and their step jobs (documents: ``model``/``queries``).

Every call goes through the reactor's :class:`~reactor.driver.Calls` (bounded, shielded,
watched), like the job store's.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from pymongo import ASCENDING
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import BulkWriteError

from reactor import model as job_model
from reactor.store import Store, load_large_result
from reactor.workflows import model, queries
from reactor.workflows.decide import Decision
from reactor.workflows.model import StepJob, Workflow

DUPLICATE_KEY = 11000
Doc = dict[str, Any]


class WorkflowStore:
    """The advancing reactor's view of ``workflows`` and of the step jobs in ``jobs``."""

    def __init__(self, store: Store, *, workflows: str, templates: str) -> None:
        self._store = store
        self.workflows: AsyncCollection[Doc] = store.db[workflows]
        self.templates: AsyncCollection[Doc] = store.db[templates]

    @property
    def owner(self) -> str:
        return self._store.owner

    def now(self) -> datetime:
        """MongoDB's time, as the reactor's leases use it."""
        return self._store.now()

    async def _run(self, name: str, call: Any) -> Any:
        return await self._store.calls.run(name, self._store.timeout_s, call)

    async def load(self, workflow_id: str) -> Workflow | None:
        doc = await self._run("workflow_read", self.workflows.find_one(queries.by_id(workflow_id)))
        return Workflow(doc) if doc is not None else None

    async def step_jobs(self, workflow_id: str) -> list[StepJob]:
        cursor = self._store.jobs.find(
            queries.step_jobs(workflow_id), model.STEP_JOB_PROJECTION
        ).sort(job_model.JOB_ID, ASCENDING)
        docs = await self._run("step_jobs_read", cursor.to_list(None))
        return [job for doc in docs if (job := StepJob.from_doc(doc)) is not None]

    async def results(self, job_ids: Iterable[str]) -> dict[str, Mapping[str, Any] | None]:
        """Result documents by ``job_id`` (``None`` for a job without one); GridFS read back."""
        wanted = sorted(set(job_ids))
        projection = {job_model.JOB_ID: 1, job_model.RESULT: 1, job_model.ERROR: 1, "result_ref": 1}
        cursor = self._store.results.find({job_model.JOB_ID: {"$in": wanted}}, projection)
        found: dict[str, Mapping[str, Any] | None] = dict.fromkeys(wanted)
        for doc in await self._run("results_read", cursor.to_list(None)):
            ref = doc.get("result_ref")
            if isinstance(ref, Mapping):
                value = await self._run("gridfs_read", load_large_result(self._store.db, ref))
                doc = {**doc, job_model.RESULT: value}
            found[doc[job_model.JOB_ID]] = doc
        return found

    async def apply_jobs(
        self, workflow_id: str, decision: Decision, now: datetime
    ) -> frozenset[str]:
        """Re-queue, create and cancel step jobs; the ids that jobs of others already hold."""
        for job_id, run in decision.requeue:
            await self._run(
                "step_requeue", self._store.jobs.update_one(*queries.requeue(job_id, run))
            )
        taken = (
            await self._insert(workflow_id, list(decision.create))
            if decision.create
            else frozenset()
        )
        if decision.cancel:
            filter_, update = queries.cancel(list(decision.cancel), now)
            await self._run("step_cancel", self._store.jobs.update_many(filter_, update))
        return taken

    async def _insert(self, workflow_id: str, docs: list[Doc]) -> frozenset[str]:
        try:
            await self._run("step_insert", self._store.jobs.insert_many(docs, ordered=False))
            return frozenset()
        except BulkWriteError as exc:
            errors = exc.details.get("writeErrors", [])
            if any(e.get("code") != DUPLICATE_KEY for e in errors):
                raise
            duplicates = [docs[e["index"]][job_model.JOB_ID] for e in errors]
        held = self._store.jobs.find(
            queries.foreign(workflow_id, duplicates), {job_model.JOB_ID: 1}
        )
        return frozenset(
            d[job_model.JOB_ID] for d in await self._run("step_clash", held.to_list(None))
        )

    async def write(self, wf: Workflow, decision: Decision) -> bool:
        """Write the workflow's fields, unless it changed since it was read (then ``False``)."""
        update = queries.state_update(wf, dict(decision.set), decision.unset)
        outcome = await self._run(
            "workflow_write", self.workflows.update_one(queries.unchanged_since(wf), update)
        )
        return bool(outcome.matched_count)

    async def unfinished(self) -> list[str]:
        cursor = self.workflows.find(queries.unfinished(), {model.WORKFLOW_ID: 1, "_id": 0})
        docs = await self._run("workflows_unfinished", cursor.to_list(None))
        return [d[model.WORKFLOW_ID] for d in docs if isinstance(d.get(model.WORKFLOW_ID), str)]

    async def malformed(self) -> list[Any]:
        """Workflow documents not yet judged whose ``workflow_id`` is not a usable string."""
        query = {
            model.STATUS: None,
            "$or": [{model.WORKFLOW_ID: {"$not": {"$type": "string"}}}, {model.WORKFLOW_ID: ""}],
        }
        cursor = self.workflows.find(query, {"_id": 1})
        return [d["_id"] for d in await self._run("workflows_malformed", cursor.to_list(None))]

    async def handle_event(self, doc_id: Any, token: str) -> bool:
        """Whether this reactor is the first to take on this change event of a workflow."""
        outcome = await self._run(
            "workflow_event", self.workflows.update_one(*queries.handle_event(doc_id, token))
        )
        return bool(outcome.matched_count)

    async def fail_malformed(self, doc_id: Any, message: str, now: datetime) -> None:
        await self._run(
            "workflow_fail",
            self.workflows.update_one(*queries.fail_malformed(doc_id, message, now)),
        )
