"""Which indexes the reactor uses as they are, creates, or needs replaced (reactor.index_plan)."""

from __future__ import annotations

from typing import Any

import pytest

from reactor import queries
from reactor.index_plan import Action, conflict_message, decide

ID_INDEX = {"v": 2, "key": {"_id": 1}, "name": "_id_"}


def index(name: str, key: dict[str, Any], **options: Any) -> dict[str, Any]:
    return {"v": 2, "key": key, "name": name, **options}


def jobs(*existing: dict[str, Any]) -> dict[str, Any]:
    """The decisions about jobs, by the reactor's index name."""
    return {d.name: d for d in decide("jobs", queries.INDEXES, [ID_INDEX, *existing])}


def results(*existing: dict[str, Any]) -> Any:
    """The decision about the results' unique job_id index (the others are listing indexes)."""
    decisions = decide("results", queries.RESULT_INDEXES, [ID_INDEX, *existing])
    return {d.name: d for d in decisions}["job_id_unique"]


def test_an_empty_collection_gets_every_index() -> None:
    """Nothing there: every index is created."""
    assert {d.action for d in jobs().values()} == {Action.CREATE}
    assert results().action is Action.CREATE


def test_the_reactors_own_indexes_are_kept() -> None:
    """Indexes as the reactor created them are left alone."""
    own = [index(n, dict(keys), **options) for n, (keys, options) in queries.INDEXES.items()]
    assert {d.action for d in jobs(*own).values()} == {Action.HAVE}


@pytest.mark.parametrize(
    "existing",
    [
        index("job_id_1", {"job_id": 1}, unique=True),
        index("by_job", {"job_id": -1}, unique=True),
        index("job_id_1", {"job_id": 1}, unique=True, sparse=True),
    ],
)
def test_a_unique_job_id_index_of_any_name_is_used_as_it_is(existing: dict[str, Any]) -> None:
    """A polling loop's unique job_id index serves jobs and results; nothing is created."""
    assert (jobs(existing)["job_id_unique"].action, jobs(existing)["job_id_unique"].used) == (
        Action.USE,
        existing["name"],
    )
    assert (results(existing).action, results(existing).used) == (Action.USE, existing["name"])
    assert not results(existing).create


@pytest.mark.parametrize(
    ("existing", "why"),
    [
        (index("job_id_1", {"job_id": 1}), "is not unique"),
        (index("job_id_1", {"job_id": 1}, unique=True, hidden=True), "is hidden"),
        (
            index(
                "job_id_1", {"job_id": 1}, unique=True, collation={"locale": "en", "strength": 2}
            ),
            "has the collation",
        ),
        (
            index("job_id_1", {"job_id": 1}, unique=True, partialFilterExpression={"done": True}),
            "is partial",
        ),
        (index("job_id_unique", {"job": 1}), "has the reactor's index name but the key"),
    ],
)
def test_an_unsuitable_job_id_index_is_replaced(existing: dict[str, Any], why: str) -> None:
    """A plain job_id_1 (or hidden, collated, partial, misnamed): dropped, then ours created."""
    for decision in (jobs(existing)["job_id_unique"], results(existing)):
        assert decision.action is Action.REPLACE
        [(name, reason)] = decision.drop
        assert name == existing["name"]
        assert reason.startswith(why)
        assert decision.create


def test_a_unique_index_where_the_reactor_writes_equal_keys_is_replaced() -> None:
    """A unique index on the claim keys would refuse the reactor's own writes."""
    decision = jobs(index("status_1_lease_expires_at_1", {"status": 1, "lease_expires_at": 1},
                          unique=True))["claim"]  # fmt: skip
    assert decision.action is Action.REPLACE
    assert decision.drop[0][1].startswith("is unique")


@pytest.mark.parametrize("name", sorted(queries.INDEXES))
def test_every_index_of_the_reactor_is_served_by_an_equal_one_of_another_name(name: str) -> None:
    """Each index the reactor ensures: the same keys and options under another name are used."""
    keys, options = queries.INDEXES[name]
    decision = jobs(index("theirs", dict(keys), **options))[name]
    assert (decision.action, decision.used) == (Action.USE, "theirs")


def test_a_full_index_serves_a_partial_one_and_reversed_directions_serve() -> None:
    """{cancel_requested: 1} without filter covers the partial one; a reversed compound key too."""
    decided = jobs(
        index("cancel_requested_1", {"cancel_requested": 1}),
        index("order", {"status": -1, "priority": 1, "_id": -1}),
    )
    assert decided["cancel_requested"].action is Action.USE
    assert decided["claim_order"].action is Action.USE


def test_the_startup_error_is_one_line_naming_the_index_and_the_command() -> None:
    """reactor run stops with one line: the collection, the index, why, and the fix."""
    decisions = decide("jobs", queries.INDEXES, [ID_INDEX, index("job_id_1", {"job_id": 1})])
    message = conflict_message(decisions)
    assert "\n" not in message
    assert message.startswith("jobs has the index job_id_1 (it is not unique), where the reactor")
    assert "run `reactor migrate --apply` to replace it" in message
