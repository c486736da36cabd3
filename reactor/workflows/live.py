"""A workflow as it is now, for people (the API's ``GET /api/workflows/{id}``, the dashboard).

The stored ``step_states`` and ``status`` change when a step job ends, not when one is claimed
(a claim does not touch the workflow document), so a workflow whose first step runs is stored
``queued``. Reading it, each step that has jobs takes its jobs' counts now (one ``$group``,
``queries.step_counts``), and an unfinished workflow whose steps run shows ``running``: OCR-D's
rule applied to what is true now. The advancer still decides from the stored documents alone.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from reactor.workflows import model, queries, state, steps

LIVE = frozenset({"running", "succeeded"})


async def read_states(
    db: AsyncDatabase[dict[str, Any]], jobs: str, workflow_id: str, stored: Any
) -> dict[str, dict[str, Any]]:
    """The workflow's step states now: :func:`live_states` over its step jobs' counts."""
    rows = await db[jobs].aggregate(queries.step_counts(workflow_id))
    return live_states(stored, [row async for row in rows])


def live_states(stored: Any, rows: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """``step_states`` with each step that has jobs replaced by its jobs' counts now (the rows
    of ``queries.step_counts``): status (jobs still to be made count as queued), ``jobs``,
    ``elements`` (once all its jobs exist), ``done`` and ``counts``."""
    merged = {
        str(name): dict(entry)
        for name, entry in (stored.items() if isinstance(stored, Mapping) else ())
        if isinstance(entry, Mapping)
    }
    for name, live in _tally(rows).items():
        counts, of = live["counts"], live["of"]
        jobs = sum(counts.values())
        waiting = {**counts, "queued": counts.get("queued", 0) + max(0, of - jobs)}
        merged[name] = {**merged.get(name, {}), "status": steps.aggregate(waiting).value,
                        "jobs": jobs, "elements": live["elements"] if jobs >= of else None,
                        "done": live["done"], "counts": counts}  # fmt: skip
    return merged


def live_status(doc: Mapping[str, Any], states: Mapping[str, Any]) -> str:
    """The workflow's status now: the stored one, except that an unfinished workflow stored
    ``queued`` whose steps run (or one of them succeeded) is ``running``."""
    stored = str(doc.get(model.STATUS) or model.WorkflowStatus.QUEUED.value)
    if stored != model.WorkflowStatus.QUEUED.value or doc.get(model.FINISHED_AT) is not None:
        return stored
    now = {str(s.get("status")) for s in states.values() if isinstance(s, Mapping)}
    return model.WorkflowStatus.RUNNING.value if now & LIVE else stored


def _tally(rows: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    by_step: dict[str, dict[str, Any]] = {}
    for row in rows:
        found = row.get("_id")
        key: Mapping[str, Any] = found if isinstance(found, Mapping) else {}
        status = str(key.get("status") or "queued")
        n, held = _int(row.get("jobs")), _int(row.get("elements"))
        live = by_step.setdefault(
            str(key.get("step")),
            {"counts": dict.fromkeys(state.JOB_STATUSES, 0), "elements": 0, "done": 0, "of": 1},
        )
        live["counts"][status] = live["counts"].get(status, 0) + n
        live["elements"] += held
        live["done"] += held if status == "succeeded" else 0
        live["of"] = max(live["of"], _int(row.get("of")))
    return by_step


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0
