"""What the dashboard shows, read from MongoDB, and the plots drawn from it (pure functions).

Counts come from one ``$group`` over the jobs; throughput from the results finished in the last
hour (``finished_recent`` index); queue length and each reactor's CPU and memory from the fleet's
samples (``reactor_workers``); the latest workflows newest first (the ``_id`` index), so every
view survives any restart. A workflow's own page is read by :mod:`.workflow`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from reactor import client, fleet, job_view, model, queries
from reactor.web.api import ApiParts
from reactor.workflows import client as workflow_client

Doc = dict[str, Any]
WINDOW = timedelta(hours=1)
BUCKET = timedelta(minutes=1)
THROUGHPUT_MAX_RESULTS = 50_000  # read at most this many results for the throughput plot
RUNNING_SHOWN = 50
FAILURES_SHOWN = 10
RECENT_SHOWN = 15
WORKFLOWS_SHOWN = 20
PLOT_W, PLOT_H = 300.0, 60.0


@dataclass(frozen=True)
class Plot:
    """A line plot as SVG points (``points``), with its largest value for the label."""

    points: str
    peak: float
    unit: str
    empty: bool = False


def plot(values: Sequence[tuple[float, float]], span_s: float, unit: str) -> Plot:
    """``(seconds into the window, value)`` pairs scaled to a ``PLOT_W`` x ``PLOT_H`` box."""
    if not values:
        return Plot("", 0.0, unit, empty=True)
    peak = max(value for _, value in values)
    top = peak if peak > 0 else 1.0
    points = " ".join(
        f"{PLOT_W * min(max(t / span_s, 0.0), 1.0):.1f},{PLOT_H * (1 - value / top):.1f}"
        for t, value in values
    )
    return Plot(points, peak, unit)


def buckets(times: Iterable[datetime], start: datetime, count: int) -> list[int]:
    """How many of ``times`` fall in each of ``count`` ``BUCKET``-long slots from ``start``."""
    counts = [0] * count
    for when in times:
        slot = (aware(when) - start) // BUCKET  # floor: a time before the start is not slot 0
        if 0 <= slot < count:
            counts[slot] += 1
    return counts


def aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def series(counts: Sequence[float]) -> list[tuple[float, float]]:
    """Per-slot values as ``(seconds, value)`` at each slot's middle."""
    step = BUCKET.total_seconds()
    return [((i + 0.5) * step, float(v)) for i, v in enumerate(counts)]


def sampled(samples: Iterable[Doc], key: str, start: datetime) -> list[tuple[float, float]]:
    """A fleet member's samples of ``key`` within the window, as ``(seconds, value)``."""
    found = []
    for sample in samples:
        at, value = sample.get("at"), sample.get(key)
        if isinstance(at, datetime) and isinstance(value, int | float):
            found.append(((aware(at) - start).total_seconds(), float(value)))
    return [(t, v) for t, v in found if t >= 0]


def queue_series(members: Iterable[Doc], start: datetime) -> list[tuple[float, float]]:
    """Queue length over time: per slot, the largest count any reactor saw."""
    count = int(WINDOW / BUCKET)
    slots: list[float | None] = [None] * count
    for member in members:
        for t, value in sampled(member.get(model.SAMPLES) or [], "queued", start):
            slot = min(int(t // BUCKET.total_seconds()), count - 1)
            current = slots[slot]
            slots[slot] = value if current is None else max(current, value)
    step = BUCKET.total_seconds()
    return [((i + 0.5) * step, v) for i, v in enumerate(slots) if v is not None]


@dataclass
class Overview:
    """Everything on the overview page."""

    now: datetime
    counts: list[tuple[str, str, int]]
    statuses: dict[str, int]
    throughput: dict[str, Plot]
    queue: Plot
    running: list[Doc]
    failures: list[Doc]
    recent: list[Doc]
    fleet: list[Doc] = field(default_factory=list)
    workflows: list[Doc] = field(default_factory=list)


async def overview(parts: ApiParts, now: datetime | None = None) -> Overview:
    db = parts.db
    now = now or parts.now()
    start = now - WINDOW
    counts = await _counts(db, parts.jobs)
    statuses: dict[str, int] = {}
    for status, _, n in counts:
        statuses[status] = statuses.get(status, 0) + n
    members = await fleet.members(db, parts.fleet_ttl_s, now)
    return Overview(
        now=now,
        counts=counts,
        statuses=statuses,
        throughput=await _throughput(db, parts.results, start),
        queue=plot(queue_series(members, start), WINDOW.total_seconds(), "jobs"),
        running=await client.list_jobs(db, status="running", limit=RUNNING_SHOWN, jobs=parts.jobs),
        failures=await _failures(db, parts.results),
        recent=await client.list_jobs(db, limit=RECENT_SHOWN, jobs=parts.jobs),
        fleet=[_member(doc, start) for doc in members],
        workflows=await workflow_client.recent(db, limit=WORKFLOWS_SHOWN,
                                               workflows=parts.workflows),
    )  # fmt: skip


async def _counts(db: AsyncDatabase[Doc], jobs: str) -> list[tuple[str, str, int]]:
    found = []
    async for row in await db[jobs].aggregate(queries.counts_by_status_and_command()):
        key = row.get("_id") or {}
        status = key.get("status") or model.Status.QUEUED.value
        found.append((str(status), str(key.get("command", "-")), int(row["n"])))
    return sorted(found, key=lambda row: (row[1], row[0]))  # by command, then status


async def _throughput(db: AsyncDatabase[Doc], results: str, start: datetime) -> dict[str, Plot]:
    cursor = db[results].find(
        queries.finished_since(start),
        {model.STATUS: 1, model.FINISHED_AT: 1, model.ID: 0},
        sort=queries.RECENTLY_FINISHED,
        limit=THROUGHPUT_MAX_RESULTS,
    )
    by_status: dict[str, list[datetime]] = {}
    async for doc in cursor:
        when = doc.get(model.FINISHED_AT)
        if isinstance(when, datetime):
            by_status.setdefault(str(doc.get(model.STATUS)), []).append(when)
    count = int(WINDOW / BUCKET)
    return {
        status: plot(series(buckets(by_status.get(status, []), start, count)),
                     WINDOW.total_seconds(), "jobs/min")
        for status in ("succeeded", "failed", "cancelled")
    }  # fmt: skip


async def _failures(db: AsyncDatabase[Doc], results: str) -> list[Doc]:
    cursor = db[results].find(
        {model.STATUS: model.Status.FAILED.value},
        sort=queries.RECENTLY_FINISHED,
        limit=FAILURES_SHOWN,
    )
    return [doc async for doc in cursor]


def _member(doc: Doc, start: datetime) -> Doc:
    samples = doc.get(model.SAMPLES) or []
    span = WINDOW.total_seconds()
    return {
        **doc,
        "cpu_plot": plot(sampled(samples, "cpu_percent", start), span, "%"),
        "rss_plot": plot(sampled(samples, "rss_mb", start), span, "MB"),
    }


def worker_name(owner: Any) -> str:
    """The worker name in a lease owner (``name/suffix``)."""
    return str(owner).rsplit("/", 1)[0] if owner else "-"


TEMPLATE_HELPERS = {
    "when": job_view.when,
    "percent": job_view.percent,
    "status_of": job_view.status_of,
    "worker_name": worker_name,
}
