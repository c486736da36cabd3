"""What a workflow's page shows: its document, its steps as boxes of the DAG with their states,
and its step jobs, read with the workflow client's ``status`` (the same call as
``reactor status WORKFLOW_ID``).

A box holds the step's name, command and state, and for a ``for_each`` step how many of its
elements are done. A step's state is its jobs' as they are now (one ``$group`` over them,
``reactor.workflows.live``): a claim does not touch the workflow document, whose ``step_states``
say ``queued`` until a job ends; a step without jobs shows its stored state (``pending``, or
``cancelled`` after a halt). The jobs table lists the first :data:`JOBS_SHOWN` step jobs (by
``job_id``) in step order.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from reactor import job_view
from reactor.web.api import ApiParts
from reactor.web.ui import dag
from reactor.workflows import client, live, model

Doc = dict[str, Any]
JOBS_SHOWN = 200
NAME_CHARS, COMMAND_CHARS = 24, 28  # what fits in a box; the whole text is its tooltip


@dataclass(frozen=True)
class StepBox:
    """One step of the DAG as drawn: where (``node``), and what it says."""

    node: dag.Node
    label: str
    command: str
    command_label: str
    state: str
    detail: str
    fraction: float | None  # elements done, for a for_each step's bar
    href: str | None  # the step's job page (a step with one job, once it exists)


@dataclass(frozen=True)
class WorkflowPage:
    workflow_id: str
    doc: Doc | None
    layout: dag.Layout
    boxes: list[StepBox]
    jobs: list[Doc]
    jobs_total: int
    states: dict[str, dict[str, Any]]

    @property
    def status(self) -> str:
        return live.live_status(self.doc or {}, self.states)

    @property
    def finished(self) -> bool:
        return (self.doc or {}).get(model.FINISHED_AT) is not None


async def read(parts: ApiParts, workflow_id: str) -> WorkflowPage:
    doc, jobs = await client.status(
        parts.db, workflow_id, workflows=parts.workflows, jobs=parts.jobs, limit=JOBS_SHOWN
    )
    defined = (doc or {}).get(model.STEPS)
    laid = dag.layout(defined)
    stored = (doc or {}).get(model.STEP_STATES)
    states = await live.read_states(parts.db, parts.jobs, workflow_id, stored)
    boxes = [box(node, workflow_id, defined, states) for node in laid.nodes]
    return WorkflowPage(workflow_id, doc, laid, boxes, step_rows(jobs, laid),
                        jobs_total(states, len(jobs)), states)  # fmt: skip


def box(node: dag.Node, workflow_id: str, defined: Any, states: Any) -> StepBox:
    """The box of the step ``node`` names, from its definition and its state (an entry of
    ``live.live_states``)."""
    step = next(s for s in defined if isinstance(s, Mapping) and s.get(model.NAME) == node.name)
    state = states.get(node.name) if isinstance(states, Mapping) else None
    state = state if isinstance(state, Mapping) else {}
    command = str(step.get(model.COMMAND, ""))
    detail, fraction = elements(state) if step.get(model.FOR_EACH) is not None else ("", None)
    single = state.get("jobs") == 1 and step.get(model.FOR_EACH) is None
    href = f"/ui/jobs/{quote(model.step_job_id(workflow_id, node.name, None), safe='')}"
    return StepBox(node, short(node.name, NAME_CHARS), command, short(command, COMMAND_CHARS),
                   str(state.get("status") or "pending"), detail, fraction,
                   href if single else None)  # fmt: skip


def elements(state: Mapping[str, Any]) -> tuple[str, float | None]:
    """A fan-out's ``"5/12 done"`` (and its failed ones) and the fraction done."""
    total, done = state.get("elements"), _int(state.get("done"))
    if not isinstance(total, int) or isinstance(total, bool):
        return ("fan-out: list not read yet" if not state.get("jobs") else f"{done} done"), None
    counts = state.get("counts") if isinstance(state.get("counts"), Mapping) else {}
    failed = _int(counts.get("failed")) if counts else 0
    text = f"{done}/{total} done" + (f", {failed} failed" if failed else "")
    return text, (done / total if total else 1.0)


def step_rows(jobs: list[Doc], laid: dag.Layout) -> list[Doc]:
    """The step jobs in the order of the steps' boxes, each step's by element index."""
    order = {node.name: i for i, node in enumerate(laid.nodes)}
    rows = []
    for job in jobs:
        found = job.get(model.LINK)
        link: Mapping[str, Any] = found if isinstance(found, Mapping) else {}
        index = link.get("index")
        rows.append({"job_id": str(job.get("job_id")), "step": str(link.get("step", "")),
                     "index": index if isinstance(index, int) else None,
                     "status": job_view.status_of(job), "attempt": job.get("attempt"),
                     "run": job.get("run") or 1})  # fmt: skip
    return sorted(rows, key=lambda r: (order.get(r["step"], len(order)), r["index"] or 0))


def jobs_total(states: Any, shown: int) -> int:
    """How many step jobs the workflow has, by its ``step_states`` (at least those shown)."""
    if not isinstance(states, Mapping):
        return shown
    found = sum(_int(s.get("jobs")) for s in states.values() if isinstance(s, Mapping))
    return max(found, shown)


def short(text: str, chars: int) -> str:
    return text if len(text) <= chars else text[: chars - 1] + "…"


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0
