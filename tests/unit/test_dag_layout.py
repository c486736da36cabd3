"""Where the dashboard draws a workflow's steps (reactor.web.ui.dag): columns by longest path,
rows in a fixed order, and coordinates that keep boxes apart, for any document."""

from __future__ import annotations

from typing import Any

from reactor.web.ui import dag


def step(name: str, *after: str, **fields: Any) -> dict[str, Any]:
    return {"name": name, "command": "c", "after": list(after), **fields}


CHAIN = [step("a"), step("b", "a"), step("c", "b")]
DIAMOND = [step("top"), step("left", "top"), step("right", "top"), step("join", "left", "right")]


def test_a_chain_puts_each_step_one_column_further() -> None:
    """a -> b -> c: depths 0, 1, 2, one step per column."""
    assert dag.depths(dag.graph(CHAIN)) == {"a": 0, "b": 1, "c": 2}
    assert dag.columns(dag.graph(CHAIN)) == [["a"], ["b"], ["c"]]


def test_a_diamond_joins_in_the_column_after_both_branches() -> None:
    """The two branches share a column, in definition order; the join comes after them."""
    assert dag.columns(dag.graph(DIAMOND)) == [["top"], ["left", "right"], ["join"]]


def test_depth_is_the_longest_path_not_the_shortest() -> None:
    """A step after both a root and a chain from it sits after the chain's end."""
    steps = [step("split"), step("ocr", "split"), step("fix", "ocr"), step("join", "split", "fix")]
    assert dag.depths(dag.graph(steps))["join"] == 3


def test_fan_out_and_join_rows_follow_their_upstream_rows() -> None:
    """Two roots each fanning out: a later column is ordered by the mean row of the steps it
    comes after, so the second root's dependants sit below the first's whatever the
    definition order."""
    steps = [step("r1"), step("r2"), step("b2", "r2"), step("b1", "r1"), step("j", "b1", "b2")]
    assert dag.columns(dag.graph(steps)) == [["r1", "r2"], ["b1", "b2"], ["j"]]


def test_the_same_steps_always_give_the_same_picture() -> None:
    """Laying out the same document twice gives equal layouts, node for node, edge for edge."""
    steps = [*DIAMOND, step("side"), step("tail", "join", "side")]
    assert dag.layout(steps) == dag.layout([dict(s) for s in steps])
    assert [n.name for n in dag.layout(steps).nodes] == [
        "top", "side", "left", "right", "join", "tail"
    ]  # fmt: skip


def test_boxes_do_not_overlap_and_fit_the_picture() -> None:
    """Every box lies inside the picture and no two boxes overlap."""
    found = dag.layout([*DIAMOND, step("x", "top"), step("y", "x")])
    boxes = [(n.x, n.y, n.x + dag.NODE_W, n.y + dag.NODE_H) for n in found.nodes]
    for x1, y1, x2, y2 in boxes:
        assert min(x1, y1) >= 0
        assert x2 <= found.width
        assert y2 <= found.height
    for i, a in enumerate(boxes):
        for b in boxes[i + 1 :]:
            assert a[2] <= b[0] or b[2] <= a[0] or a[3] <= b[1] or b[3] <= a[1]


def test_each_after_entry_is_one_edge_from_right_to_left() -> None:
    """An edge per ``after`` entry, leaving its source's right side for its target's left."""
    found = dag.layout(DIAMOND)
    assert sorted((e.source, e.target) for e in found.edges) == [
        ("left", "join"), ("right", "join"), ("top", "left"), ("top", "right")
    ]  # fmt: skip
    top = next(n for n in found.nodes if n.name == "top")
    edge = next(e for e in found.edges if e.target == "left")
    assert edge.path.startswith(f"M{top.x + dag.NODE_W},{top.y + dag.NODE_H // 2} ")


def test_a_malformed_document_is_still_drawn() -> None:
    """Steps that are not documents, nameless or repeated steps and unknown ``after`` names are
    left out; a cycle ends with bounded depths; no steps give an empty picture."""
    steps = ["junk", {"command": "c"}, step("a", "ghost"), step("a"), step("b", "a", "c"),
             step("c", "b")]  # fmt: skip
    found = dag.layout(steps)
    assert [n.name for n in found.nodes] == ["a", "b", "c"]
    assert all(d < 3 for d in dag.depths(dag.graph(steps)).values())
    assert dag.graph(steps)[0] == ("a", ())
    empty = dag.layout(None)
    assert (empty.nodes, empty.edges) == ((), ())
    assert (empty.width, empty.height) == (2 * dag.PAD, 2 * dag.PAD)


def test_a_line_that_skips_a_column_runs_below_the_boxes_between() -> None:
    """split -> pdf past ocr: the line leaves split's row for the gap under it, so it never
    runs behind ocr's box; the picture grows by that gap."""
    found = dag.layout([step("split"), step("ocr", "split"), step("pdf", "ocr", "split")])
    edge = next(e for e in found.edges if (e.source, e.target) == ("split", "pdf"))
    lane = dag.PAD + dag.NODE_H + dag.GAP_Y // 2
    assert f",{lane} L" in edge.path
    assert found.height == 2 * dag.PAD + dag.NODE_H + dag.GAP_Y
