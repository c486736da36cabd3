"""Where the dashboard draws a workflow's steps: columns by depth, rows, coordinates (pure).

A step's column is its depth, the longest path to it from a step without ``after``; a step's
row orders it within its column: the first column in definition order, each later one by the
mean row of the steps it comes after (fewer crossing lines), ties in definition order. So the
same steps always give the same picture. A line that skips columns runs along the gap below its
source's row, never behind another step's box.

It draws what a document holds, even one that fails to parse: names that are not strings and
repeated names are skipped, an ``after`` naming no step is ignored, and a cycle cannot make a
depth grow past the number of steps.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

NODE_W, NODE_H = 200, 84  # a step's box
GAP_X, GAP_Y = 56, 18  # between columns, between rows
PAD = 8  # around the picture


@dataclass(frozen=True)
class Node:
    name: str
    column: int
    row: int
    x: int
    y: int


@dataclass(frozen=True)
class Edge:
    """A line from the right side of ``source`` to the left side of ``target`` (SVG path)."""

    source: str
    target: str
    path: str


@dataclass(frozen=True)
class Layout:
    nodes: tuple[Node, ...]
    edges: tuple[Edge, ...]
    width: int
    height: int


def graph(steps: Any) -> list[tuple[str, tuple[str, ...]]]:
    """``(name, after)`` of each usable step of a ``steps`` field, in definition order."""
    found: dict[str, tuple[str, ...]] = {}
    for raw in steps if isinstance(steps, list) else []:
        if not isinstance(raw, Mapping) or not isinstance(raw.get("name"), str):
            continue
        after = raw.get("after")
        names = tuple(a for a in after if isinstance(a, str)) if isinstance(after, list) else ()
        found.setdefault(raw["name"], names)
    return [(name, tuple(a for a in after if a in found)) for name, after in found.items()]


def depths(steps: Sequence[tuple[str, Sequence[str]]]) -> dict[str, int]:
    """Each step's longest path from a root over ``after`` (0 for a root)."""
    depth = {name: 0 for name, _ in steps}
    for _ in range(len(steps)):  # a path has at most len(steps) - 1 edges
        changed = False
        for name, after in steps:
            deepest = max((depth[a] + 1 for a in after if a in depth), default=0)
            if deepest > depth[name] and deepest < len(steps):
                depth[name], changed = deepest, True
        if not changed:
            break
    return depth


def columns(steps: Sequence[tuple[str, Sequence[str]]]) -> list[list[str]]:
    """The step names of each column, top to bottom."""
    depth = depths(steps)
    position = {name: i for i, (name, _) in enumerate(steps)}
    after = dict(steps)
    laid: list[list[str]] = [[] for _ in range(max(depth.values(), default=-1) + 1)]
    row: dict[str, float] = {}
    for column, names in enumerate(laid):
        members = [name for name, _ in steps if depth[name] == column]
        names.extend(sorted(members, key=lambda n: (_mean_row(after[n], row), position[n])))
        row.update((name, float(i)) for i, name in enumerate(names))
    return laid


def _mean_row(after: Sequence[str], row: Mapping[str, float]) -> float:
    placed = [row[a] for a in after if a in row]
    return sum(placed) / len(placed) if placed else 0.0


def layout(steps: Any) -> Layout:
    """The picture of a ``steps`` field: a box per step, a line per ``after`` entry."""
    edges_of = graph(steps)
    laid = columns(edges_of)
    nodes = {
        name: Node(name, c, r, PAD + c * (NODE_W + GAP_X), PAD + r * (NODE_H + GAP_Y))
        for c, names in enumerate(laid)
        for r, name in enumerate(names)
    }
    edges = tuple(
        Edge(source, name, _curve(nodes[source], nodes[name]))
        for name, after in edges_of
        for source in after
    )
    rows = max((len(names) for names in laid), default=0)
    width = 2 * PAD + len(laid) * NODE_W + max(len(laid) - 1, 0) * GAP_X
    height = 2 * PAD + rows * NODE_H + max(rows - 1, 0) * GAP_Y
    if any(_skips(nodes[e.source], nodes[e.target]) for e in edges):
        height += GAP_Y  # room for the lane below the last row
    ordered = tuple(sorted(nodes.values(), key=lambda n: (n.column, n.row)))
    return Layout(ordered, edges, width, height)


def _curve(source: Node, target: Node) -> str:
    """A curve into the next column; past more columns, along the lane below the source's
    row (the gap between rows holds no box), so the line never runs behind another box."""
    x1, y1 = source.x + NODE_W, source.y + NODE_H // 2
    x2, y2 = target.x, target.y + NODE_H // 2
    if _skips(source, target):
        lane, q = source.y + NODE_H + GAP_Y // 2, GAP_X // 4
        return (f"M{x1},{y1} C{x1 + q},{y1} {x1 + q},{lane} {x1 + 2 * q},{lane} "
                f"L{x2 - 2 * q},{lane} C{x2 - q},{lane} {x2 - q},{y2} {x2},{y2}")  # fmt: skip
    bend = max(abs(x2 - x1) // 2, GAP_X // 2)
    return f"M{x1},{y1} C{x1 + bend},{y1} {x2 - bend},{y2} {x2},{y2}"


def _skips(source: Node, target: Node) -> bool:
    return target.column - source.column > 1
