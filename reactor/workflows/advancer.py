"""Advancing workflows: read the stored documents, decide (``decide.py``), write the decision.

What asks for an advance, and why nothing is lost or doubled (in depth: docs/workflows.md):

- **A step job's final status** carries ``step_final`` in the same write, so every reactor sees
  its change event. The reactor that wrote it (``owner``) advances the workflow at once; every
  other reactor schedules a check one grace period later (``REACTOR_LEASE_S``), which finds
  nothing to do unless that reactor died (or lost MongoDB) between the two.
- **A client's write to a workflow** (insert, ``cancel_requested``, ``status: queued``): the
  first reactor to mark the change event as handled on the document advances it at once; the
  others check one grace period later.
- **The catch-up** advances every unfinished workflow at startup, after every (re)opened stream
  and after MongoDB comes back.

Nothing polls: each check is armed by an event or a catch-up, and fires once. The pending set
and the timers are hints in memory; the decision is always made from the stored documents, and
every write it makes is idempotent, so two reactors advancing one workflow at once (or one
advancing it twice) create each step job once and write the workflow's fields once per change
(a compare-and-set on ``version``).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import anyio
from pymongo.errors import PyMongoError

from reactor.driver import is_transient
from reactor.errors import InvalidWorkflow
from reactor.logging import get_logger
from reactor.workflows import definition as definitions
from reactor.workflows.decide import Decision, NeedResults, decide
from reactor.workflows.model import StepJob, Workflow
from reactor.workflows.store import WorkflowStore

log = get_logger("reactor.workflows")

RETRY_S = 1.0  # after a failed advance (MongoDB away), try again this much later
CAS_ROUNDS = 8  # decisions in a row that may lose the compare-and-set before giving way
RESULT_ROUNDS = 8  # "need results" answers one decision may give
WORKERS = 4  # workflows advanced at once


class Advancer:
    """Advances workflows when asked; a task (:meth:`run`) does the work."""

    def __init__(
        self, store: WorkflowStore, commands: Callable[[str], bool], *, grace_s: float
    ) -> None:
        self._store = store
        self._commands = commands
        self._grace_s = grace_s
        self._pending: set[str] = set()
        self._running: set[str] = set()
        self._later: dict[str, float] = {}  # workflow_id -> time.monotonic() due
        self._events: list[tuple[Any, str | None, str]] = []  # (doc _id, workflow_id, token)
        self._catch_up = True  # the first catch-up, at startup
        self._changed = anyio.Event()
        self.advances = 0  # completed advances (tests, metrics)

    # -- what asks --------------------------------------------------------------------------

    def request(self, workflow_id: str) -> None:
        """Advance this workflow as soon as a worker is free."""
        self._pending.add(workflow_id)
        self._wake()

    def later(self, workflow_id: str, delay_s: float | None = None) -> None:
        """Advance it after ``delay_s`` (default: the grace period), unless asked sooner."""
        due = time.monotonic() + (self._grace_s if delay_s is None else delay_s)
        self._later[workflow_id] = min(due, self._later.get(workflow_id, math.inf))
        self._wake()

    def step_final(self, workflow_id: str, owner: str) -> None:
        """A step job's final status: at once if this reactor wrote it, else after the grace."""
        if owner == self._store.owner:
            self.request(workflow_id)
        else:
            self.later(workflow_id)

    def changed(self, doc_id: Any, workflow_id: str | None, token: str) -> None:
        """A client's write to a workflow: the first reactor to take the event advances it."""
        self._events.append((doc_id, workflow_id, token))
        self._wake()

    def catch_up(self) -> None:
        """Advance every unfinished workflow (startup, a reopened stream, MongoDB back)."""
        self._catch_up = True
        self._wake()

    def _wake(self) -> None:
        self._changed.set()
        self._changed = anyio.Event()

    # -- the task ---------------------------------------------------------------------------

    async def run(self) -> None:
        async with anyio.create_task_group() as tg:
            tg.start_soon(self._timers)
            tg.start_soon(self._intake)
            for _ in range(WORKERS):
                tg.start_soon(self._work)

    async def _timers(self) -> None:
        """Move the advances whose time has come to the pending set."""
        while True:
            now = time.monotonic()
            due = [w for w, at in self._later.items() if at <= now]
            for workflow_id in due:
                del self._later[workflow_id]
                self._pending.add(workflow_id)
            if due:
                self._wake()
            wait_s = min(self._later.values(), default=math.inf) - time.monotonic()
            changed = self._changed
            with anyio.move_on_after(max(0.0, wait_s)):
                await changed.wait()

    async def _intake(self) -> None:
        """Catch-ups and clients' change events: the reads and writes they need first."""
        while True:
            changed = self._changed
            try:
                if self._catch_up:
                    self._catch_up = False
                    await self._catch_up_now()
                while self._events:
                    await self._take_event(*self._events[0])
                    self._events.pop(0)
            except PyMongoError as exc:
                log.warning("workflow_intake_failed", error=str(exc), retry_in_s=RETRY_S)
                await anyio.sleep(RETRY_S)
                continue
            await changed.wait()

    async def _catch_up_now(self) -> None:
        try:
            found = await self._store.unfinished()
            malformed = await self._store.malformed()
        except PyMongoError:
            self._catch_up = True
            raise
        for doc_id in malformed:
            await self._fail_malformed(doc_id)
        self._pending.update(found)
        if found:
            log.info("workflows_caught_up", workflows=len(found))
            self._wake()

    async def _take_event(self, doc_id: Any, workflow_id: str | None, token: str) -> None:
        if not workflow_id:
            await self._fail_malformed(doc_id)
        elif await self._store.handle_event(doc_id, token):
            self.request(workflow_id)
        else:
            self.later(workflow_id)

    async def _fail_malformed(self, doc_id: Any) -> None:
        message = "a workflow needs a workflow_id: a non-empty string"
        await self._store.fail_malformed(doc_id, message, self._store.now())
        log.warning("workflow_malformed", doc_id=str(doc_id))

    async def _work(self) -> None:
        while True:
            workflow_id = await self._next()
            try:
                await self.advance(workflow_id)
            except PyMongoError as exc:
                if not is_transient(exc):  # a refusal: the next event or catch-up tries again
                    log.error("workflow_advance_refused", workflow_id=workflow_id, error=str(exc))
                    continue
                log.warning(
                    "workflow_advance_failed",
                    workflow_id=workflow_id,
                    error=str(exc),
                    retry_in_s=RETRY_S,
                )
                self.later(workflow_id, RETRY_S)
            except Exception:  # one workflow's trouble must not stop every reactor that meets it
                log.exception("workflow_advance_crashed", workflow_id=workflow_id)
            finally:
                self._running.discard(workflow_id)
                if workflow_id in self._pending:
                    self._wake()

    async def _next(self) -> str:
        while True:
            changed = self._changed
            ready = next((w for w in self._pending if w not in self._running), None)
            if ready is not None:
                self._pending.discard(ready)
                self._running.add(ready)
                return ready
            await changed.wait()

    # -- one advance ------------------------------------------------------------------------

    async def advance(self, workflow_id: str) -> None:
        """Decide from the stored documents and write the decision, until it lands."""
        for _ in range(CAS_ROUNDS):
            if await self._advance_once(workflow_id):
                self.advances += 1
                return
        log.info("workflow_contended", workflow_id=workflow_id)
        self.later(workflow_id, RETRY_S)

    async def _advance_once(self, workflow_id: str) -> bool:
        wf = await self._store.load(workflow_id)
        if wf is None:
            return True
        jobs = await self._store.step_jobs(workflow_id)
        decision = await self._decide(wf, jobs, frozenset())
        now = self._store.now()
        taken = await self._store.apply_jobs(workflow_id, decision, now)
        if taken:
            decision = await self._decide(wf, jobs, taken)
            await self._store.apply_jobs(workflow_id, decision, now)
        if not decision.writes_workflow:
            return True
        written = await self._store.write(wf, decision)
        if written:
            self._log(wf, decision)
        return written

    async def _decide(self, wf: Workflow, jobs: list[StepJob], taken: frozenset[str]) -> Decision:
        parsed = self._definition(wf)
        results: dict[str, Any] = {}
        for _ in range(RESULT_ROUNDS):
            found = decide(
                wf, parsed, jobs, results, self._store.now(), owner=self._store.owner, taken=taken
            )
            if not isinstance(found, NeedResults):
                return found
            results |= await self._store.results(found.job_ids)
        raise AssertionError(f"workflow {wf.workflow_id}: results still missing")  # a bug

    def _definition(self, wf: Workflow) -> definitions.Definition | InvalidWorkflow:
        try:
            return definitions.of_workflow(wf.doc, commands=self._commands)
        except InvalidWorkflow as exc:
            return exc

    def _log(self, wf: Workflow, decision: Decision) -> None:
        status = decision.set.get("status")
        fields = {"workflow_id": wf.workflow_id, "status": status or wf.status}
        if decision.create:
            fields["created"] = len(decision.create)
        if decision.cancel:
            fields["cancelled"] = len(decision.cancel)
        if decision.requeue:
            fields["requeued"] = len(decision.requeue)
        if "finished_at" in decision.set:
            log.info("workflow_finished", **fields)
        elif status is not None or decision.create or decision.requeue:
            log.info("workflow_advanced", **fields)
