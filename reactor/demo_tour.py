"""``reactor demo``'s lifecycle tour: each capability users switch for, once, with its timing.

Cancel of a running job, a re-run, priorities, a delayed job, progress, and a retry with
back-off. Every step does what a client would (documents written through ``reactor.client``,
waits on change streams) against the demo's reactor; the steps run side by side, so the tour
takes as long as its slowest step (a few seconds). Its handlers are in-process and named
``tour_*``, so they cannot clash with installed commands.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import anyio
from pymongo.asynchronous.database import AsyncDatabase

from reactor import client, model
from reactor.errors import Retry
from reactor.handler import JobContext, handler
from reactor.registry import Handler, build_handler
from reactor.retry import RetryPolicy

Db = AsyncDatabase[dict[str, Any]]
Doc = dict[str, Any]
WAIT_S = 60.0  # bound of every wait (a loaded machine, not the expected time)
BACKOFF_S = 0.25
DELAY_S = 1.5
RUN_BEFORE_CANCEL_S = 0.5
PRIORITIES: list[tuple[str, int | None]] = [
    ("low", -5),
    ("default", None),
    ("high", 10),
    ("mid", 5),
]


@dataclass(frozen=True)
class Step:
    """One capability shown: whether it behaved as documented, and what was seen."""

    title: str
    ok: bool
    seen: str
    took_s: float = 0.0


GATES: dict[str, anyio.Event] = {}  # in-process: the tour opens them (one reactor, one loop)


@handler(max_concurrency=1, version="1")
async def tour_one_at_a_time(seconds: float, gate: str | None = None) -> None:
    """Wait for the tour to open ``gate`` (if given), then ``seconds``; one runs at a time, so
    the jobs queued behind it start one by one, by priority."""
    if gate is not None:
        await GATES[gate].wait()
    await anyio.sleep(seconds)


@handler(version="1")
async def tour_steps(ctx: JobContext, steps: int, step_s: float) -> dict[str, int]:
    """Report progress after each of ``steps`` steps."""
    for done in range(1, steps + 1):
        await anyio.sleep(step_s)
        ctx.progress(done / steps, f"step {done} of {steps}")
    return {"steps": steps}


@handler(retry=RetryPolicy(max_attempts=4, backoff_s=BACKOFF_S, jitter=0.0), version="1")
async def tour_flaky(ctx: JobContext, failures: int) -> dict[str, int]:
    """Ask for another attempt ``failures`` times (back-off from the retry policy)."""
    if ctx.attempt <= failures:
        raise Retry(f"scanner busy on attempt {ctx.attempt}")
    return {"attempt": ctx.attempt}


def handlers() -> list[Handler]:
    """The tour's own commands, to add to the demo reactor's registry."""
    return [build_handler(fn.__name__, fn) for fn in (tour_one_at_a_time, tour_steps, tour_flaky)]


async def run_tour(db: Db) -> int:
    """Run every step side by side, print one line each; 0 when each behaved as documented."""
    steps: list[Step | None] = [None] * len(STEPS)

    async def run(index: int, step: Callable[[Db], Awaitable[Step]]) -> None:
        started = anyio.current_time()
        found = await step(db)
        steps[index] = Step(found.title, found.ok, found.seen, anyio.current_time() - started)

    async with anyio.create_task_group() as tg:
        for index, step in enumerate(STEPS):
            tg.start_soon(run, index, step)
    print("\nlifecycle tour: each capability once, timed here (the steps ran side by side)")
    done = [found for found in steps if found is not None]
    for found in done:
        mark = "ok " if found.ok else "BAD"
        print(f"[{mark}] {found.title:<22} {found.seen} ({found.took_s:.2f} s)")
    return 0 if all(found.ok for found in done) else 1


async def cancel_running(db: Db) -> Step:
    """A job that would sleep a minute is cancelled once it runs."""
    await client.submit(db, "sleep", {"seconds": 60}, job_id="tour-cancel")
    running = await watch_job(db, "tour-cancel", lambda doc: doc.get(model.STATUS) == "running")
    await anyio.sleep(RUN_BEFORE_CANCEL_S)  # let it run a moment, as a real job would
    asked = now()
    await client.cancel(db, "tour-cancel")
    result = await client.wait_for_result(db, "tour-cancel", timeout_s=WAIT_S)
    ran = seconds(running[model.STARTED_AT], asked)
    after = seconds(asked, result[model.FINISHED_AT])
    seen = (
        f"sleep 60 s, cancelled {ran:.2f} s into it: cancelled result {after * 1000:.0f} ms later"
    )
    return Step("cancel a running job", result[model.STATUS] == "cancelled", seen)


async def rerun(db: Db) -> Step:
    """A finished job set back to queued runs again, keeping the first run in its history."""
    await client.submit(db, "echo", {"page": 1}, job_id="tour-rerun")
    await client.wait_for_result(db, "tour-rerun", timeout_s=WAIT_S)
    asked = now()
    await client.retry(db, "tour-rerun")
    second = await client.wait_for_result(db, "tour-rerun", timeout_s=WAIT_S, min_run=2)
    history = second.get(model.HISTORY) or [{}]
    after = seconds(asked, second[model.FINISHED_AT])
    seen = (
        f"reactor retry: run {second[model.RUN]} {second[model.STATUS]} {after * 1000:.0f} ms "
        f"later; history keeps run 1 ({history[0].get(model.STATUS)})"
    )
    ok = second[model.STATUS] == "succeeded" and history[0].get(model.RUN) == 1
    return Step("re-run a finished job", ok, seen)


async def priorities(db: Db) -> Step:
    """Four jobs queued behind a running one start highest priority first, one at a time."""
    GATES["priorities"] = anyio.Event()
    await client.submit(db, "tour_one_at_a_time", {"seconds": 0, "gate": "priorities"},
                        job_id="tour-first")  # fmt: skip
    await watch_job(db, "tour-first", lambda doc: doc.get(model.STATUS) == "running")
    docs = [
        client.new_job("tour_one_at_a_time", {"seconds": 0.05}, f"tour-{name}", priority=p)
        for name, p in PRIORITIES
    ]
    await db.jobs.insert_many(docs)
    GATES["priorities"].set()  # all four are queued: let the running one finish
    ids = [doc[model.JOB_ID] for doc in docs]
    results = await client.wait_for_results(db, ids, timeout_s=WAIT_S)
    label = {f"tour-{name}": "0 (none)" if p is None else str(p) for name, p in PRIORITIES}
    order = sorted(ids, key=lambda key: results[key][model.STARTED_AT])
    seen = (
        f"queued behind a running job as {', '.join(label[k] for k in ids)}: "
        f"started {', '.join(label[k] for k in order)}"
    )
    return Step("priorities", order == ["tour-high", "tour-mid", "tour-default", "tour-low"], seen)


async def delayed(db: Db) -> Step:
    """A job with run_at starts no sooner, and shortly after (one timer, no polling)."""
    run_at = now() + timedelta(seconds=DELAY_S)
    await client.submit(db, "echo", {}, job_id="tour-delayed", run_at=run_at)
    result = await client.wait_for_result(db, "tour-delayed", timeout_s=WAIT_S)
    late = seconds(run_at, result[model.STARTED_AT])
    seen = f"run_at = submit + {DELAY_S:g} s: started {late * 1000:.0f} ms after run_at"
    return Step("delayed job (run_at)", -0.001 <= late < 1.0, seen)


async def progress(db: Db) -> Step:
    """ctx.progress reports land on the job document (at most one write a second)."""
    seen_fractions: list[float] = []

    def note(doc: Doc) -> bool:
        fraction = (doc.get(model.PROGRESS) or {}).get("fraction")
        if isinstance(fraction, float | int) and fraction not in seen_fractions:
            seen_fractions.append(float(fraction))
        return doc.get(model.STATUS) in client.TERMINAL

    await client.submit(db, "tour_steps", {"steps": 4, "step_s": 0.6}, job_id="tour-progress")
    job = await watch_job(db, "tour-progress", note)
    shown = ", ".join(f"{100 * f:.0f}%" for f in seen_fractions) or "none"
    seen = (
        f"reports 25%, 50%, 75%, 100% over 2.4 s; the job document showed {shown} "
        "(at most one write a second)"
    )
    return Step("progress", job[model.STATUS] == "succeeded" and bool(seen_fractions), seen)


async def retry_backoff(db: Db) -> Step:
    """Two Retry requests, then success: back-off doubles, the reasons are kept in errors."""
    await client.submit(db, "tour_flaky", {"failures": 2}, job_id="tour-retry")
    result = await client.wait_for_result(db, "tour-retry", timeout_s=WAIT_S)
    errors = result.get(model.ERRORS) or []
    if len(errors) != 2:
        return Step("retry with back-off", False, f"errors: {errors!r}")
    pauses = [
        seconds(errors[0]["at"], errors[1]["at"]),
        seconds(errors[1]["at"], result[model.STARTED_AT]),
    ]
    seen = (
        f"Retry('{errors[0]['message']}') twice, then attempt {result[model.ATTEMPT]} succeeded; "
        f"waited {pauses[0]:.2f} s, then {pauses[1]:.2f} s (back-off {BACKOFF_S:g} s, doubled)"
    )
    ok = result[model.STATUS] == "succeeded" and pauses[0] >= BACKOFF_S - 0.01
    return Step("retry with back-off", ok and pauses[1] >= 2 * BACKOFF_S - 0.01, seen)


STEPS: list[Callable[[Db], Awaitable[Step]]] = [
    cancel_running, rerun, priorities, delayed, progress, retry_backoff,
]  # fmt: skip


async def watch_job(db: Db, job_id: str, until: Callable[[Doc], bool]) -> Doc:
    """The job document once ``until`` holds for it (a change stream, opened before looking)."""
    pipeline = [{"$match": {"fullDocument.job_id": job_id}}]
    with anyio.fail_after(WAIT_S):
        async with await db.jobs.watch(pipeline, full_document="updateLookup") as stream:
            doc = await db.jobs.find_one({model.JOB_ID: job_id})
            while doc is None or not until(doc):
                doc = (await stream.next()).get("fullDocument")
    return doc


def now() -> datetime:
    return datetime.now(UTC)


def seconds(start: datetime, end: datetime) -> float:
    return (_aware(end) - _aware(start)).total_seconds()


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)
