"""A workflow's definition: checked at once, steps put in order, references checked."""

from __future__ import annotations

from typing import Any

import pytest

from reactor.errors import InvalidWorkflow
from reactor.workflows.definition import parse


def step(name: str, command: str = "echo", **fields: Any) -> dict[str, Any]:
    return {"name": name, "command": command, **fields}


def test_steps_come_after_their_after_steps_otherwise_in_definition_order() -> None:
    """A step listed before its dependency is moved after it; independent steps keep order."""
    definition = parse([step("c", after=["b"]), step("a"), step("b", after=["a"]), step("d")])
    assert definition.names == ("a", "d", "b", "c")
    assert definition.step("c").upstream == {"a", "b"}
    assert definition.downstream("a") == {"b", "c"}


@pytest.mark.parametrize(
    ("steps", "message"),
    [
        ([step("a", after=["b"]), step("b", after=["a"])], "cycle"),
        ([step("a", after=["a"])], "cannot come after itself"),
        ([step("a", after=["zz"])], "unknown step 'zz'"),
        ([step("a"), step("a")], "two steps are named 'a'"),
        ([step("1a")], "must start with a letter"),
        ([step("a.b")], "must start with a letter"),
        ([step("a", depends_on=["b"])], "unknown field(s) ['depends_on']"),
        ([step("a", command="")], "command must be a non-empty string"),
        ([step("a", args=[1])], "args must be a document"),
        ([step("a", batch=2)], "batch needs for_each"),
        ([step("a", for_each=[1], batch=0)], "batch must be a whole number"),
        ([], "non-empty list"),
    ],
)
def test_a_malformed_definition_is_refused_with_what_is_wrong(
    steps: list[dict[str, Any]], message: str
) -> None:
    """Each malformed definition raises InvalidWorkflow naming the problem."""
    with pytest.raises(InvalidWorkflow) as caught:
        parse(steps)
    assert message in str(caught.value)


def test_an_unknown_command_is_refused_when_commands_are_known() -> None:
    """With the served commands given, a step naming another command is refused."""
    with pytest.raises(InvalidWorkflow, match="unknown command 'nope'"):
        parse([step("a", command="nope")], commands={"echo"}.__contains__)


def test_a_result_reference_must_name_an_upstream_step() -> None:
    """$result of a step that is not before it (directly or transitively) is refused."""
    parse(
        [
            step("a"),
            step("b", after=["a"]),
            step("c", after=["b"], args={"x": {"$result": "a.pages"}}),
        ]
    )
    with pytest.raises(InvalidWorkflow, match="not upstream"):
        parse([step("a"), step("b", args={"x": {"$result": "a"}})])
    with pytest.raises(InvalidWorkflow, match="not upstream"):
        parse([step("a", for_each={"$result": "b"}), step("b")])


def test_item_belongs_in_a_for_each_steps_args_only() -> None:
    """$item outside a for_each step, or inside for_each itself, is refused."""
    with pytest.raises(InvalidWorkflow, match="needs for_each"):
        parse([step("a", args={"x": {"$item": ""}})])
    with pytest.raises(InvalidWorkflow, match="cannot use \\$item"):
        parse([step("a", for_each={"$item": ""})])


def test_a_parameter_left_without_value_is_refused() -> None:
    """A $param that no template run replaced fails the definition."""
    with pytest.raises(InvalidWorkflow, match="parameter 'lang'"):
        parse([step("a", args={"lang": {"$param": "lang"}})])


def test_the_default_output_is_the_last_steps_result() -> None:
    """Without output, one last step's result is the output; several give a document."""
    assert parse([step("a"), step("b", after=["a"])]).output == {"$result": "b"}
    both = parse([step("a"), step("b")]).output
    assert both == {"a": {"$result": "a"}, "b": {"$result": "b"}}
    with pytest.raises(InvalidWorkflow, match="unknown step 'x'"):
        parse([step("a")], {"$result": "x"})


def test_a_literal_is_never_read_as_a_reference() -> None:
    """$literal hides what it holds from the reference checks."""
    parse([step("a", args={"x": {"$literal": {"$result": "nowhere"}}})])
