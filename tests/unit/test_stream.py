"""How the stream turns change events into claim tiers, cancels and due times (no database)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from mongomock.filtering import filter_applies

from reactor.model import CancelRequest
from reactor.queries import Tier
from reactor.stream import PIPELINE, JobStream, dispatch, jobs_pipeline, tiers_for


class Recorder:
    def __init__(self) -> None:
        self.tiers: list[Tier] = []
        self.cancels: list[tuple[Any, CancelRequest]] = []
        self.dues: list[datetime] = []
        self.reopens = 0
        self.taken_away: list[tuple[Any, str, Any]] = []
        self.offers: list[Any] = []
        self.claims: list[Any] = []

    def wake(self, *tiers: Tier) -> None:
        self.tiers.extend(tiers)

    def offered(self, doc_id: Any, *tiers: Tier) -> None:
        self.offers.append(doc_id)
        self.tiers.extend(tiers)

    def claimed(self, doc_id: Any) -> None:
        self.claims.append(doc_id)

    def cancel(self, doc_id: Any, request: CancelRequest) -> None:
        self.cancels.append((doc_id, request))

    def due(self, when: datetime) -> None:
        self.dues.append(when)

    def reopened(self) -> None:
        self.reopens += 1

    def taken(self, doc_id: Any, change: str, claim_id: Any) -> None:
        self.taken_away.append((doc_id, change, claim_id))


def _update(**fields: Any) -> dict[str, Any]:
    return {
        "operationType": "update",
        "documentKey": {"_id": 7},
        "updateDescription": {"updatedFields": fields},
    }


@pytest.mark.parametrize(
    ("fields", "tier"),
    [
        ({}, Tier.DEFAULT),
        ({"priority": 0}, Tier.DEFAULT),
        ({"priority": 4}, Tier.POSITIVE),
        ({"priority": -2}, Tier.NEGATIVE),
        ({"priority": "high"}, Tier.REPAIR),
        ({"status": "QUEUED"}, Tier.REPAIR),
        ({"status": None}, Tier.DEFAULT),
    ],
)
def test_an_insert_raises_the_tier_that_can_claim_it(fields: dict[str, Any], tier: Tier) -> None:
    """Priority and status of an inserted job pick the one claim tier to try."""
    assert tiers_for(fields) == (tier,)


def test_an_event_reports_its_lag() -> None:
    """A job event raises its tier once and reports how late it arrived."""
    listener = Recorder()
    lags: list[float] = []
    clock = SimpleNamespace(now=lambda: datetime.now(UTC), owner="me")
    stream = JobStream(clock, listener, on_lag=lags.append)  # type: ignore[arg-type]
    stream._on_change(
        {
            "operationType": "insert",
            "wallTime": datetime.now(UTC) - timedelta(seconds=2),
            "fullDocument": {},
        }
    )
    assert listener.tiers == [Tier.DEFAULT]
    assert lags == [pytest.approx(2, abs=0.5)]


def test_an_invalidate_keeps_its_token_and_does_not_wake() -> None:
    """An invalidate event is remembered as the token to start after, not a job."""
    listener = Recorder()
    stream = JobStream(SimpleNamespace(owner="me"), listener)  # type: ignore[arg-type]
    stream._on_change({"operationType": "invalidate", "_id": {"_data": "ff"}})
    assert listener.tiers == []
    assert stream.token == {"_data": "ff"}


def test_a_cancel_request_is_passed_on_with_its_time() -> None:
    """cancel_requested true becomes a cancel for that document, not a claim."""
    listener = Recorder()
    at = datetime(2026, 1, 1, tzinfo=UTC)
    dispatch({**_update(cancel_requested=True), "wallTime": at}, listener)
    assert listener.cancels == [(7, CancelRequest("cancel_requested", at))]
    assert listener.tiers == []


def test_a_status_set_to_cancelled_is_a_cancel_request() -> None:
    """A client's status: cancelled asks for cancellation through the status field."""
    listener = Recorder()
    dispatch(_update(status="cancelled"), listener)
    assert [request.via for _, request in listener.cancels] == ["status"]


def test_a_requeue_raises_every_queued_tier_and_offers_its_due_time() -> None:
    """A job set back to queued may have any priority; its run_at re-arms the timer."""
    listener = Recorder()
    when = datetime(2030, 1, 1, tzinfo=UTC)
    dispatch(_update(status="queued", run_at=when), listener)
    assert set(listener.tiers) == {Tier.POSITIVE, Tier.DEFAULT, Tier.NEGATIVE}
    assert listener.dues == [when]


def test_only_client_steering_matches_the_pipeline() -> None:
    """Inserts, re-queues and cancel requests match; the reactor's own writes do not."""
    match = PIPELINE[0]["$match"]
    assert filter_applies(match, {"operationType": "insert"})
    for fields in ({"status": "queued"}, {"cancel_requested": True}, {"status": "cancelled"}):
        assert filter_applies(match, _update(**fields)), fields
    for own_write in (
        {"status": "running", "lease_owner": "me"},
        {"lease_expires_at": 1},
        {"status": "succeeded"},
        {"progress": {"fraction": 0.5}},
        {"status": "cancelled", "cancelled_at": 1},
    ):
        assert not filter_applies(match, _update(**own_write)), own_write


def test_a_client_taking_a_job_away_is_reported() -> None:
    """A replacement (with the claim it names), a deletion and a client's status queued are
    reported as taken away; the reactor's own re-queue, which drops the lease, is not."""
    listener = Recorder()
    dispatch({"operationType": "replace", "documentKey": {"_id": 1}, "fullDocument": {}}, listener)
    dispatch({"operationType": "delete", "documentKey": {"_id": 2}}, listener)
    dispatch(_update(status="queued") | {"documentKey": {"_id": 3}}, listener)
    own = _update(status="queued") | {"documentKey": {"_id": 4}}
    own["updateDescription"]["removedFields"] = ["lease_owner", "lease_expires_at"]
    dispatch(own, listener)
    assert listener.taken_away == [(1, "replace", None), (2, "delete", None), (3, "requeue", None)]


def test_a_released_lease_raises_every_queued_tier() -> None:
    """The release of a re-queued job's lease wakes the queued tiers (its priority is unknown)."""
    listener = Recorder()
    dispatch(_update(lease_released_at=datetime.now(UTC)), listener)
    assert set(listener.tiers) == {Tier.POSITIVE, Tier.DEFAULT, Tier.NEGATIVE}


class FollowRecorder(Recorder):
    def __init__(self) -> None:
        super().__init__()
        self.finals: list[tuple[str, str]] = []
        self.callbacks: list[Any] = []

    def step_final(self, workflow_id: str, owner: str) -> None:
        self.finals.append((workflow_id, owner))

    def callback_due(self, due: Any) -> None:
        self.callbacks.append(due)


def test_a_step_jobs_final_status_moves_its_workflow_on_and_wakes_no_claim() -> None:
    """A final status carrying step_final names the workflow and the reactor that wrote it;
    it raises no claim tier and is no cancel request, even when cancelled."""
    listener = FollowRecorder()
    marker = {"workflow_id": "w", "owner": "r1/ab", "claim_id": 3}
    dispatch(_update(status="cancelled", cancelled_at=1, step_final=marker), listener)
    assert listener.finals == [("w", "r1/ab")]
    assert (listener.tiers, listener.cancels) == ([], [])


def test_a_pending_callback_arms_the_delivery_timer() -> None:
    """A final status with a pending callback offers its due time and owner."""
    listener = FollowRecorder()
    due = datetime(2030, 1, 1, tzinfo=UTC)
    callback = {"state": "pending", "due_at": due, "owner": "r2/cd", "id": "j:1"}
    dispatch(_update(status="succeeded", callback=callback), listener)
    assert [(d.due_at, d.owner) for d in listener.callbacks] == [(due, "r2/cd")]
    assert listener.tiers == []


def test_final_statuses_others_wait_on_match_the_pipeline_and_no_other_does() -> None:
    """step_final and a whole pending callback match; a deliverer's dotted callback updates and
    a plain final status do not."""
    match = PIPELINE[0]["$match"]
    assert filter_applies(match, _update(status="succeeded", step_final={"workflow_id": "w"}))
    assert filter_applies(match, _update(callback={"state": "pending"}))
    assert not filter_applies(match, _update(**{"callback.state": "pending"}))
    assert not filter_applies(match, _update(callback={"state": "delivered"}))


def test_only_other_reactors_claims_match_the_reactors_pipeline() -> None:
    """A claim (an update setting claim_id) by another reactor matches; this reactor's own
    claims do not, and the steering still does."""
    match = jobs_pipeline("me")[0]["$match"]
    assert filter_applies(match, _update(status="running", claim_id=1, lease_owner="other"))
    assert not filter_applies(match, _update(status="running", claim_id=1, lease_owner="me"))
    assert filter_applies(match, _update(cancel_requested=True))
    assert filter_applies(match, {"operationType": "insert"})


def test_a_new_job_is_offered_and_a_claim_is_reported_without_waking() -> None:
    """An insert or a replacement is offered (its preferred reactor rings); another reactor's
    claim is reported as claimed and raises no tier."""
    listener = Recorder()
    dispatch({"operationType": "insert", "documentKey": {"_id": 1}, "fullDocument": {}}, listener)
    dispatch({"operationType": "replace", "documentKey": {"_id": 2}, "fullDocument": {}}, listener)
    assert listener.offers == [1, 2]
    dispatch(_update(status="running", claim_id=3, lease_owner="other"), listener)
    assert listener.claims == [7]
    assert listener.tiers == [Tier.DEFAULT, Tier.DEFAULT]
