"""Binding ``$merge``'s variables into its pipeline, a pure function of the engine."""

from __future__ import annotations

import pytest

from reactor.testing.double.engine.paths import MISSING
from reactor.testing.double.engine.variables import bind, check_variable_name
from reactor.testing.double.replies import CommandFailed

NEW = {"_id": 1, "a": {"b": 2}, "items": [{"x": 1}, {"x": 2}]}


def test_bind_makes_variables_and_their_paths_constants() -> None:
    """$$new, $$new.a.b and a path through an array become $literal values of the document."""
    bound = bind({"$set": {"all": "$$new", "b": "$$new.a.b", "xs": "$$new.items.x"}}, {"new": NEW})
    assert bound == {
        "$set": {"all": {"$literal": NEW}, "b": {"$literal": 2}, "xs": {"$literal": [1, 2]}}
    }


def test_bind_reads_a_missing_value_as_removed() -> None:
    """A path the value lacks, or a let value that was missing, reads as $$REMOVE (missing)."""
    assert bind(["$$new.nope", "$$gone"], {"new": NEW, "gone": MISSING}) == ["$$REMOVE"] * 2


def test_bind_leaves_literals_other_variables_and_shadowed_names_alone() -> None:
    """$literal, $$ROOT and names rebound by $let or $map keep their meaning inside them."""
    expression = {
        "lit": {"$literal": "$$new"},
        "root": "$$ROOT",
        "let": {"$let": {"vars": {"new": "$$new.a"}, "in": "$$new.b"}},
        "map": {"$map": {"input": "$$new.items", "as": "new", "in": "$$new.x"}},
    }
    bound = bind(expression, {"new": NEW})
    assert bound["lit"] == {"$literal": "$$new"}
    assert bound["root"] == "$$ROOT"
    assert bound["let"] == {"$let": {"vars": {"new": {"$literal": {"b": 2}}}, "in": "$$new.b"}}
    assert bound["map"]["$map"] == {
        "input": {"$literal": NEW["items"]},
        "as": "new",
        "in": "$$new.x",
    }


@pytest.mark.parametrize(
    ("name", "code"), [("", 16866), ("Big", 16867), ("_x", 16867), ("a-b", 16868)]
)
def test_user_variable_names_follow_mongodbs_rules(name: str, code: int) -> None:
    """A let name must start with a lowercase letter and hold letters, digits and _ only."""
    with pytest.raises(CommandFailed) as caught:
        check_variable_name(name)
    assert caught.value.code == code
