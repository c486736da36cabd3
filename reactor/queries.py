"""The filters, sorts and updates the reactor sends: the query half of ``model.py``.

Claims come in tiers, so that the claim order (``priority`` descending, a missing priority
counting as 0, then oldest first) is served by the ``claim_order`` index without a blocking sort,
although MongoDB sorts a missing field below every number:

1. ``positive``: queued jobs with ``priority > 0``, by priority, then ``_id``;
2. ``default``: queued jobs with ``priority`` 0 or absent, by ``_id`` (an index merge);
3. ``negative``: queued jobs with ``priority < 0``, by priority, then ``_id``;
4. ``repair``: expired leases of other owners, cancellations nobody has recorded, and malformed
   documents that the other tiers never match; in no particular order.

A queued job is claimable once its ``run_at`` is absent or not in the future and no live lease
holds it (a client set it back to ``queued`` while it ran: its execution gives the lease up first).
Every write about a running job is fenced on ``{_id, lease_owner, fence, claim_id}``: ``claim_id``
is unique to one claim, so neither a process that stalled past its lease nor the execution of a
document the client replaced can overwrite the claim that replaced it. Every date is the server's
(``clock.ServerClock``).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from reactor.callbacks import model as callback_model
from reactor.model import (
    ADOPTED_AT,
    ATTEMPT,
    CANCEL_REQUESTED,
    CANCEL_REQUESTED_AT,
    CANCELLED_AT,
    CANCELLED_VIA,
    CLAIM_ID,
    COMMAND,
    CREATED_AT,
    ERRORS,
    ERRORS_MAX,
    FENCE,
    FINISHED_AT,
    ID,
    ISOLATED,
    JOB_DOC_ID,
    JOB_ID,
    LEASE_EXPIRES_AT,
    LEASE_OWNER,
    LEASE_RELEASED_AT,
    PRIORITY,
    PROGRESS,
    RUN,
    RUN_AT,
    STARTED_AT,
    STATUS,
    STATUS_VALUES,
    TERMINAL_STATUSES,
    CancelRequest,
    Job,
    Status,
)
from reactor.workflows import model as workflow_model

Doc = dict[str, Any]
Sort = list[tuple[str, int]]

QUEUED_STATES: list[Any] = [None, Status.QUEUED.value]  # None also matches a missing field
INF = float("inf")  # an infinite priority is malformed (model.PRIORITY_RULE), like NaN
NON_NUMBER_TYPES = [
    "string", "object", "array", "binData", "objectId", "bool", "date", "regex",
    "javascript", "symbol", "timestamp", "decimal", "minKey", "maxKey",
]  # fmt: skip


class Tier(enum.Enum):
    """Which claim query; see the module docstring."""

    POSITIVE = "positive"
    DEFAULT = "default"
    NEGATIVE = "negative"
    REPAIR = "repair"


CLAIM_ORDER: tuple[Tier, ...] = (Tier.REPAIR, Tier.POSITIVE, Tier.DEFAULT, Tier.NEGATIVE)
QUEUED_TIERS: tuple[Tier, ...] = (Tier.POSITIVE, Tier.DEFAULT, Tier.NEGATIVE)
BY_PRIORITY: Sort = [(PRIORITY, -1), (ID, 1)]

_STRING_JOB_ID = {"partialFilterExpression": {JOB_ID: {"$type": "string"}}}
INDEXES: dict[str, tuple[Sort, Doc]] = {
    "job_id_unique": ([(JOB_ID, 1)], {"unique": True, **_STRING_JOB_ID}),
    "claim": ([(STATUS, 1), (LEASE_EXPIRES_AT, 1)], {}),
    "claim_order": ([(STATUS, 1), (PRIORITY, -1), (ID, 1)], {}),
    "due": ([(STATUS, 1), (RUN_AT, 1)], {}),
    "cancel_requested": (
        [(CANCEL_REQUESTED, 1)],
        {"partialFilterExpression": {CANCEL_REQUESTED: True}},
    ),
    "cancelled": ([(STATUS, 1), (CANCELLED_AT, 1)], {}),
}
RESULT_INDEXES: dict[str, tuple[Sort, Doc]] = {
    "job_id_unique": ([(JOB_ID, 1)], {"unique": True}),
    # what a result write merges on: the job_id and the job document that owns the slot
    "job_doc_unique": ([(JOB_ID, 1), (JOB_DOC_ID, 1)], {"unique": True}),
}


def _due(now: datetime) -> Doc:
    return {RUN_AT: {"$not": {"$gt": now}}}


def _claimable(now: datetime) -> Doc:
    """Queued, due, and held by no live lease."""
    return {STATUS: {"$in": QUEUED_STATES}, **_due(now), **_expired(now)}


def _expired(now: datetime) -> Doc:
    """No live lease: expired, or none at all (a ``running`` job without a lease counts)."""
    return {LEASE_EXPIRES_AT: {"$not": {"$gt": now}}}


def tier_query(
    tier: Tier, now: datetime, owner: str, *, reclaim: bool = True
) -> tuple[Doc, Sort | None]:
    """The filter and sort of one claim tier (``reclaim``: take expired leases of others)."""
    if tier is Tier.POSITIVE:
        return {**_claimable(now), PRIORITY: {"$gt": 0}}, BY_PRIORITY
    if tier is Tier.DEFAULT:
        return {**_claimable(now), PRIORITY: {"$in": [None, 0]}}, [(ID, 1)]
    if tier is Tier.NEGATIVE:
        return {**_claimable(now), PRIORITY: {"$lt": 0}}, BY_PRIORITY
    branches = repair_branches(now, owner)
    return {"$or": branches if reclaim else branches[1:]}, None


def batch_claimable(query: Doc) -> Doc:
    """A queued tier's query for a batch claim: only jobs no claim ever held without finishing
    (a job re-queued while it ran takes the single claim, which reads what it was before)."""
    return {"$and": [query, {LEASE_OWNER: {"$exists": False}}]}


def repair_branches(now: datetime, owner: str) -> list[Doc]:
    """Jobs no ordinary tier claims but that need an outcome (see the module docstring); the
    first branch, expired leases of other owners, is what a reclaim takes."""
    return [
        {STATUS: Status.RUNNING.value, **_expired(now), LEASE_OWNER: {"$ne": owner}},
        {STATUS: Status.CANCELLED.value, CANCELLED_AT: None, **_expired(now)},
        {STATUS: {"$nin": [None, *STATUS_VALUES]}},
        {STATUS: {"$in": QUEUED_STATES}, PRIORITY: {"$type": NON_NUMBER_TYPES}},
        {STATUS: {"$in": QUEUED_STATES}, PRIORITY: {"$in": [float("nan"), INF, -INF]}},
        {STATUS: {"$in": QUEUED_STATES}, CANCEL_REQUESTED: True},
        {STATUS: {"$in": QUEUED_STATES}, LEASE_EXPIRES_AT: {"$lte": now}, **_due(now)},
    ]


def targeted(doc_id: Any, now: datetime, owner: str) -> Doc:
    """One job whose cancellation was asked for, if no live lease holds it (whatever its
    ``run_at`` or priority): the claim then records the cancellation without running it."""
    return {
        ID: doc_id,
        "$or": [
            {STATUS: {"$in": QUEUED_STATES}, CANCEL_REQUESTED: True},
            {STATUS: Status.RUNNING.value, CANCEL_REQUESTED: True, **_expired(now),
             LEASE_OWNER: {"$ne": owner}},
            {STATUS: Status.CANCELLED.value, CANCELLED_AT: None, **_expired(now)},
        ],
    }  # fmt: skip


@dataclass(frozen=True)
class Restriction:
    """Which commands a claim may take now: not ``exclude``, and only ``only`` when given
    (``reactor.admission`` decides them)."""

    exclude: tuple[str, ...] = ()
    only: tuple[str, ...] | None = None

    @property
    def any(self) -> bool:
        return bool(self.exclude) or self.only is not None


UNRESTRICTED = Restriction()


def restrict(query: Doc, restriction: Restriction) -> Doc:
    """``query`` limited to the commands ``restriction`` allows."""
    parts = [query]
    if restriction.exclude:
        parts.append({COMMAND: {"$nin": sorted(restriction.exclude)}})
    if restriction.only is not None:
        parts.append({COMMAND: {"$in": sorted(restriction.only)}})
    return parts[0] if len(parts) == 1 else {"$and": parts}


def claim_update(owner: str, claim_id: Any, now: datetime, lease_s: float) -> Doc:
    """Take a job: running under ``owner``, a fresh lease, the next fence, a new ``claim_id``.

    ``attempt`` and ``created_at`` use ``$max``/``$min``, which compare across BSON types and so
    never fail on a malformed value (``Job.from_claim`` judges those); only ``fence`` uses
    ``$inc``, and a non-number there is repaired by :func:`fence_repair`.
    """
    return {
        "$set": {
            STATUS: Status.RUNNING.value,
            LEASE_OWNER: owner,
            CLAIM_ID: claim_id,
            LEASE_EXPIRES_AT: now + timedelta(seconds=lease_s),
            STARTED_AT: now,
        },
        "$inc": {FENCE: 1},
        "$max": {ATTEMPT: 1},
        "$min": {CREATED_AT: now},
    }


def bad_fence(now: datetime, owner: str) -> Doc:
    """Claimable-looking jobs whose ``fence`` is not a number (the claim's ``$inc`` fails)."""
    claimable = [{STATUS: {"$in": QUEUED_STATES}}, *repair_branches(now, owner)]
    return {"$or": claimable, FENCE: {"$type": NON_NUMBER_TYPES}}


def fence_repair() -> Doc:
    return {"$set": {FENCE: 0}}


def _claim(job: Job) -> Doc:
    return {ID: job.doc_id, LEASE_OWNER: job.owner, FENCE: job.fence, CLAIM_ID: job.claim_id}


def fence(job: Job) -> Doc:
    """Matches the job only while this claim still owns it (a user's ``cancelled`` keeps it)."""
    return {**_claim(job), STATUS: {"$in": [Status.RUNNING.value, Status.CANCELLED.value]}}


def requeued_fence(job: Job) -> Doc:
    """The job, still under this claim's lease, which a client set back to ``queued``."""
    return {**_claim(job), STATUS: {"$in": QUEUED_STATES}}


def fence_uncancelled(job: Job) -> Doc:
    """The fence of a write that would put the job back to queued: not once cancelled."""
    return {**_claim(job), STATUS: Status.RUNNING.value, CANCEL_REQUESTED: {"$ne": True}}


def start_update(job: Job, *, isolated: bool) -> Doc | None:
    """What the claim could not write: a new run's numbers, or the run-alone mark; or nothing."""
    update: Doc = {}
    if job.rerun:
        update["$set"] = {RUN: job.run, ATTEMPT: job.attempt}
        update["$unset"] = dict.fromkeys(
            [FINISHED_AT, ERRORS, PROGRESS, CANCELLED_AT, CANCELLED_VIA, ISOLATED], ""
        )
    if isolated:
        update.setdefault("$set", {})[ISOLATED] = True
    return update or None


def renew_update(now: datetime, lease_s: float) -> Doc:
    return {"$set": {LEASE_EXPIRES_AT: now + timedelta(seconds=lease_s)}}


RENEW_PROJECTION = {STATUS: 1, CANCEL_REQUESTED: 1, CANCEL_REQUESTED_AT: 1}
REQUEUE_CHECK = {STATUS: 1, CLAIM_ID: 1}


def progress_update(fraction: float, message: str | None, now: datetime) -> Doc:
    return {"$set": {PROGRESS: {"fraction": fraction, "message": message, "updated_at": now}}}


_RELEASE = dict.fromkeys([LEASE_OWNER, LEASE_EXPIRES_AT, ISOLATED], "")


def finish_update(
    job: Job,
    status: Status,
    now: datetime,
    cancel: CancelRequest | None,
    *,
    started: bool = True,
) -> Doc:
    """Record a final status and drop the lease (``started``: False for a job cancelled before
    this attempt's handler started: no ``started_at``, and ``attempt`` counts only the attempts
    that did start)."""
    fields: Doc = {STATUS: status.value, FINISHED_AT: now, RUN: job.run, ATTEMPT: job.attempt}
    fields |= followups(job, now)
    unset = {**_RELEASE, CANCEL_REQUESTED: "", CANCEL_REQUESTED_AT: ""}
    if cancel is not None:
        fields |= {CANCELLED_AT: now, CANCELLED_VIA: cancel.via}
    if not started:
        fields[ATTEMPT] = job.attempt - 1
        unset[STARTED_AT] = ""
    return {"$set": fields, "$unset": unset}


def followups(job: Job, now: datetime) -> Doc:
    """What a final status sets for those waiting on it, in the same write (so the change event
    that tells them cannot be lost between two writes):

    - a workflow's step job: ``step_final`` (``reactor.workflows.model``), new on every claim
      (it names the claim);
    - a job with a ``callback_url``: a fresh pending ``callback`` (``reactor.callbacks.model``).
    """
    found: Doc = {}
    link = workflow_model.Link.from_doc(job.workflow)
    if link is not None:
        found[workflow_model.STEP_FINAL] = workflow_model.step_final(
            link.workflow_id, job.owner, job.claim_id
        )
    if isinstance(job.callback_url, str) and job.callback_url:
        delivery_id = callback_model.job_delivery_id(job.key, job.run)
        found[callback_model.CALLBACK] = callback_model.pending(delivery_id, job.owner, now)
    return found


def released(now: datetime, *, finished: bool, job: Job) -> Doc:
    """Give up the lease of a job a client set back to ``queued`` while it ran, so that it is
    claimed again (``lease_released_at`` wakes the reactors). ``finished``: this run's result was
    written already, so the run is over and the next claim starts a new run."""
    fields: Doc = {LEASE_RELEASED_AT: now}
    if finished:
        fields |= {FINISHED_AT: now, RUN: job.run, ATTEMPT: job.attempt}
    return {"$set": fields, "$unset": {**_RELEASE, STARTED_AT: "", PROGRESS: ""}}


def failed_without_result(job: Job, error: Doc, now: datetime) -> Doc:
    """A job whose result MongoDB refused: failed, with the refusal on the job itself."""
    update = finish_update(job, Status.FAILED, now, None)
    update["$set"]["error"] = error
    return update


def requeue_update(job: Job, *, run_at: datetime | None, error: Doc | None) -> Doc:
    """Back to queued for the next attempt (a retry), due at ``run_at``."""
    update: Doc = {
        "$set": {STATUS: Status.QUEUED.value, ATTEMPT: job.attempt + 1, RUN: job.run},
        "$unset": {**_RELEASE, STARTED_AT: ""},
    }
    if run_at is not None:
        update["$set"][RUN_AT] = run_at
    if error is not None:
        update["$push"] = {ERRORS: {"$each": [error], "$slice": -ERRORS_MAX}}
    return update


def hand_back_update(run_at: datetime | None = None) -> Doc:
    """Back to queued with the same run and attempt (a drain, a lost keep-alive): not charged.

    The stored ``run`` and ``attempt`` are already right: the claim or the start wrote them, and
    a new run whose start was never written is recognised again by its ``finished_at``.
    ``run_at`` holds it back for a moment (an abandoned thread of it still runs here).
    """
    update: Doc = {
        "$set": {STATUS: Status.QUEUED.value},
        "$unset": {**_RELEASE, STARTED_AT: "", PROGRESS: ""},
    }
    if run_at is not None:
        update["$set"][RUN_AT] = run_at
    return update


def _merge_into(into: str) -> Doc:
    return {"$merge": {
        "into": into,
        "on": [JOB_ID, JOB_DOC_ID],
        "whenMatched": [{"$replaceWith": "$$new"}],  # the _id stays, as in every update
        "whenNotMatched": "insert",
    }}  # fmt: skip


def _literal(doc: Doc) -> Doc:
    return {"$literal": {k: v for k, v in doc.items() if k != ID}}


def results_merge(written: list[tuple[Job, Doc]], *, into: str) -> list[Doc]:
    """:func:`result_merge` for several jobs in one aggregation: each matched job (under its
    own claim) becomes its own result document."""
    branches = [{"case": {"$eq": ["$_id", job.doc_id]}, "then": _literal(doc)}
                for job, doc in written]  # fmt: skip
    return [
        {"$match": {"$or": [_claim(job) for job, _ in written]}},
        {"$replaceWith": {"$switch": {"branches": branches}}},
        _merge_into(into),
    ]


def finished_under_claim(jobs: list[Job]) -> Doc:
    """The jobs that a final status was written for under their own claim (the lease dropped,
    the claim's id kept)."""
    final = [status.value for status in TERMINAL_STATUSES]
    return {"$or": [{ID: job.doc_id, CLAIM_ID: job.claim_id, LEASE_OWNER: {"$exists": False},
                     STATUS: {"$in": final}} for job in jobs]}  # fmt: skip


def result_merge(job: Job, doc: Doc, *, into: str) -> list[Doc]:
    """The aggregation over ``jobs`` that writes ``doc`` as the job's result while, and only
    while, this claim holds the job: the job matches under the claim (whatever status a client
    set meanwhile), becomes the result document, and is merged into ``results`` on
    ``{job_id, job_doc_id}``, replacing this job's earlier result (an update, so that clients
    watching for updates see each run's). A slot held by another job document's result fails
    the insert on the ``job_id`` index (11000): :func:`reactor.store.Store.finish` then looks."""
    return [{"$match": _claim(job)}, {"$replaceWith": _literal(doc)}, _merge_into(into)]


def own_result(job: Job) -> Doc:
    """The result this claim wrote, and nothing else."""
    return {JOB_ID: job.key, CLAIM_ID: job.claim_id, JOB_DOC_ID: job.doc_id}


def earliest_due(now: datetime) -> tuple[Doc, Sort]:
    return {STATUS: {"$in": QUEUED_STATES}, RUN_AT: {"$gt": now}}, [(RUN_AT, 1)]


def queued() -> Doc:
    return {STATUS: {"$in": QUEUED_STATES}}


def adopt_update(status: str, finished_at: datetime, now: datetime) -> Doc:
    return {"$set": {STATUS: status, FINISHED_AT: finished_at, ADOPTED_AT: now}}


# -- reading jobs (the API, the dashboard) ---------------------------------------------------

# The listing indexes: newest first within a status, a command, or both (cursor on ``_id``).
LISTING_INDEXES: dict[str, tuple[Sort, Doc]] = {
    "status_recent": ([(STATUS, 1), (ID, -1)], {}),
    "command_recent": ([(COMMAND, 1), (ID, -1)], {}),
    "status_command_recent": ([(STATUS, 1), (COMMAND, 1), (ID, -1)], {}),
}
RESULT_LISTING_INDEXES: dict[str, tuple[Sort, Doc]] = {
    "finished_recent": ([(FINISHED_AT, -1)], {}),
    "status_finished_recent": ([(STATUS, 1), (FINISHED_AT, -1)], {}),
}


def job_listing(status: str | None, command: str | None, before_id: Any = None) -> Doc:
    """Jobs of a status and a command (either may be ``None``), older than ``before_id``."""
    query: Doc = {}
    if status is not None:
        query[STATUS] = {"$in": QUEUED_STATES} if status == Status.QUEUED.value else status
    if command is not None:
        query[COMMAND] = command
    if before_id is not None:
        query[ID] = {"$lt": before_id}
    return query


NEWEST_FIRST: Sort = [(ID, -1)]
RECENTLY_FINISHED: Sort = [(FINISHED_AT, -1)]


def counts_by_status_and_command() -> list[Doc]:
    """How many jobs of each status and command (a missing status counts as queued)."""
    return [
        {"$group": {"_id": {"status": f"${STATUS}", "command": f"${COMMAND}"}, "n": {"$sum": 1}}}
    ]


def finished_since(since: datetime, status: str | None = None) -> Doc:
    """Results finished at ``since`` or later (of one status)."""
    query: Doc = {FINISHED_AT: {"$gte": since}}
    if status is not None:
        query[STATUS] = status
    return query


# -- the fleet ---------------------------------------------------------------------------------

WORKER_INDEXES_NAME = "last_seen_ttl"


def fleet_beat(member: Doc, sample: Doc, in_flight: int, keep: int) -> Doc:
    """The upsert of one heartbeat: who it is, the latest sample (the last ``keep`` kept)."""
    return {
        "$set": {**member, "in_flight": in_flight},
        "$currentDate": {"last_seen": True},
        "$push": {"samples": {"$each": [sample], "$slice": -keep}},
    }


def fleet_alive(now: datetime, ttl_s: float) -> Doc:
    """Members seen within ``ttl_s`` (the TTL monitor deletes the rest within a minute)."""
    return {"last_seen": {"$gte": now - timedelta(seconds=ttl_s)}}


# The listing indexes are the reactor's like the claim indexes: ensured at startup and after
# every reconnect with the others.
INDEXES.update(LISTING_INDEXES)
RESULT_INDEXES.update(RESULT_LISTING_INDEXES)
