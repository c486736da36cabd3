"""Job fields of the wrong type are named with their type, and ``priority`` has one rule.

The priority rule (any finite number: an integer or a double) is stated once, in
``reactor.model``, and the document check, ``reactor submit --priority`` and the Python client
all apply it with the same message.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from bson import Decimal128, ObjectId

from reactor import client, model
from reactor.cli import build_parser
from reactor.dispatch import early_outcome
from reactor.errors import ClientError
from reactor.model import Job, document_problem, priority_problem
from reactor.queries import Tier
from reactor.registry import Registry, build_handler
from reactor.stream import tiers_for

NOW = datetime(2026, 12, 1, tzinfo=UTC)


async def echo(**args: Any) -> dict[str, Any]:
    return args


REGISTRY = Registry([build_handler("echo", echo)])
NOT_PRIORITIES = ["high", True, math.nan, math.inf, -math.inf, Decimal128(Decimal("2.5")), [1]]


def claimed(**fields: Any) -> Job:
    doc = {"_id": ObjectId(), "job_id": "j", "command": "echo", "args": {}, **fields}
    return Job.from_claim(doc, "me", NOW)


@pytest.mark.parametrize(
    ("field", "value", "kind"),
    [
        ("job_id", 12345, "an integer"),
        ("job_id", "", "an empty string"),
        ("job_id", ["a"], "a list"),
        ("command", 42, "an integer"),
        ("command", {"name": "echo"}, "a mapping"),
        ("command", 2.5, "a double"),
    ],
)
def test_a_field_of_the_wrong_type_is_named_with_its_type(
    field: str, value: Any, kind: str
) -> None:
    """job_id 12345 or command 42 fails as InvalidJob saying what the field holds instead."""
    outcome = early_outcome(claimed(**{field: value}), None, REGISTRY)
    assert outcome is not None
    assert outcome.error is not None
    assert outcome.error.type == "InvalidJob"
    assert outcome.error.message.startswith(f"{field} {value!r} is {kind}, not a non-empty string")


def test_a_wrongly_typed_job_id_says_where_its_result_goes() -> None:
    """The result of a job whose job_id is not a string is keyed by its _id, and it says so."""
    doc_id = ObjectId()
    job = Job.from_claim({"_id": doc_id, "job_id": 7, "command": "echo"}, "me", NOW)
    assert job.key == str(doc_id)
    assert f"its result is keyed by its _id {doc_id}" in (job.problem or "")


def test_missing_job_id_and_command_still_say_they_are_missing() -> None:
    """Absent fields are not type errors: the 'has no' messages stay for them."""
    assert document_problem({"job_id": None, "command": None}) is None


@pytest.mark.parametrize("value", [0, 5, -3, 2.5, -0.5, 2**62])
def test_every_finite_number_is_a_priority(value: Any) -> None:
    """Integers and doubles, negative or fractional, are priorities."""
    assert priority_problem(value) is None
    assert document_problem({"priority": value}) is None


@pytest.mark.parametrize("value", NOT_PRIORITIES)
def test_anything_else_is_refused_with_the_one_rule(value: Any) -> None:
    """Strings, booleans, NaN, infinities and Decimal128 are refused, naming the rule."""
    problem = priority_problem(value)
    assert problem == f"priority {value!r} is not a finite number ({model.PRIORITY_RULE})"
    assert document_problem({"priority": value}) == problem


@pytest.mark.parametrize("value", [math.inf, -math.inf, "high"])
def test_a_malformed_priority_wakes_only_the_repair_tier(value: Any) -> None:
    """An infinite priority is malformed like a string: the repair tier fails it."""
    assert tiers_for({"priority": value}) == (Tier.REPAIR,)


def test_submit_takes_a_fractional_priority() -> None:
    """reactor submit --priority 2.5 is accepted, like the document field."""
    ns = build_parser().parse_args(["submit", "echo", "--priority", "2.5"])
    assert ns.priority == 2.5
    ns = build_parser().parse_args(["submit", "echo", "--priority", "-4"])
    assert (ns.priority, type(ns.priority)) == (-4, int)


@pytest.mark.parametrize("text", ["high", "nan", "inf"])
def test_submit_refuses_a_priority_with_the_same_message(
    text: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """The CLI's refusal is the document's message, word for word."""
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args(["submit", "echo", "--priority", text])
    assert exit_info.value.code == 2
    value: Any = text if text == "high" else float(text)
    assert f"argument --priority: {priority_problem(value)}" in capsys.readouterr().err


@pytest.mark.parametrize("value", NOT_PRIORITIES)
def test_the_python_client_refuses_a_priority_with_the_same_message(value: Any) -> None:
    """client.new_job (and so client.submit) raises ClientError with the document's message."""
    with pytest.raises(ClientError) as error:
        client.new_job("echo", priority=value)
    assert str(error.value) == priority_problem(value)
    assert client.new_job("echo", priority=2.5)["priority"] == 2.5
