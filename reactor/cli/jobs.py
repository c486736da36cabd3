"""The client subcommands: ``submit``, ``status``, ``cancel``, ``retry``, ``list``.

They only read and write documents (:mod:`reactor.client`); a running reactor does the work.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import anyio

from reactor import client, job_view, model
from reactor.cli import workflows as cli_workflows
from reactor.cli.support import (
    CONNECTION_FIELDS,
    EXIT_CONFIG,
    EXIT_JOB_FAILED,
    EXIT_NOT_FOUND,
    EXIT_OK,
    EXIT_WAIT_TIMEOUT,
    connect,
    settings_flags,
    settings_of,
    subparser,
    to_json,
    with_db,
)
from reactor.config import Settings

DEFAULT_WAIT_S = 60.0

Sub = Any  # argparse's _SubParsersAction, which has no public name


def add_commands(sub: Sub) -> None:
    """Register the client subcommands on ``sub``."""
    _add_submit(sub)
    _add_status(sub)
    _add_cancel(sub)
    _add_retry(sub)
    _add_list(sub)


def _add_wait(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument("--wait", action="store_true", help=f"wait for {what} and print it")
    parser.add_argument(
        "--timeout-s",
        "--timeout",
        dest="timeout_s",
        type=float,
        default=DEFAULT_WAIT_S,
        metavar="S",
        help=f"seconds --wait waits (default: {DEFAULT_WAIT_S:g}); timeout_s in Python",
    )


def _add_submit(sub: Sub) -> None:
    p = subparser(
        sub,
        "submit",
        "insert a job; with --wait, print its result",
        "Insert a job document {job_id, command, args} into the jobs collection and print its\n"
        "job_id; with --wait, wait for its result instead and print the result document.",
    )
    p.add_argument("command", help="the handler name (see: reactor handlers)")
    p.add_argument("--args", default="{}", help="the job's args as a JSON object (default: {})")
    p.add_argument("--job-id", help="the job's id (default: a random one); must be unused")
    p.add_argument(
        "--priority",
        type=_priority,
        metavar="N",
        help="any finite number, such as 5, -1 or 2.5: higher runs first (default: 0)",
    )
    when = p.add_mutually_exclusive_group()
    when.add_argument(
        "--run-at",
        type=_iso_datetime,
        metavar="ISO8601",
        help="do not start before this time, e.g. 2026-12-01T18:00:00+01:00 (UTC if no zone)",
    )
    when.add_argument(
        "--delay-s", type=float, metavar="S", help="do not start before S seconds from now"
    )
    _add_wait(p, "the result")
    settings_flags(p, CONNECTION_FIELDS)
    p.set_defaults(func=cmd_submit)


def _add_status(sub: Sub) -> None:
    p = subparser(
        sub,
        "status",
        "show a job (or a workflow, as a tree of its steps)",
        "Show one job as people read it: its status, run and attempt, progress, lease, result\n"
        "and the outcomes of earlier runs. --json prints the raw job and result documents.\n"
        "Given a workflow_id that is no job's, shows that workflow as a tree of its steps.",
    )
    p.add_argument("job_id", metavar="JOB_ID|WORKFLOW_ID")
    p.add_argument("--json", action="store_true", help="print {job, result} as JSON")
    settings_flags(p, (*CONNECTION_FIELDS, "workflows_collection"))
    p.set_defaults(func=cmd_status)


def _add_cancel(sub: Sub) -> None:
    p = subparser(
        sub,
        "cancel",
        "ask for a queued or running job to be cancelled",
        "Set cancel_requested on a job that has not finished. A queued job is never started; a\n"
        "running one is stopped by the reactor that runs it, which writes a cancelled result.",
    )
    p.add_argument("job_id")
    _add_wait(p, "the cancelled result")
    settings_flags(p, CONNECTION_FIELDS)
    p.set_defaults(func=cmd_cancel)


def _add_retry(sub: Sub) -> None:
    p = subparser(
        sub,
        "retry",
        "run a finished job again (a new run with fresh attempts)",
        "Set a succeeded, failed or cancelled job back to queued (clearing a cancel request):\n"
        "the reactor starts its next run, with a fresh attempt budget, and replaces its result.",
    )
    p.add_argument("job_id")
    _add_wait(p, "the new run's result")
    settings_flags(p, CONNECTION_FIELDS)
    p.set_defaults(func=cmd_retry)


def _add_list(sub: Sub) -> None:
    p = subparser(
        sub,
        "list",
        "list jobs, newest first",
        "List jobs newest first, as a table or as JSON lines. --status failed lists the dead\n"
        "letters: jobs that failed for good; reactor retry JOB_ID revives one.",
    )
    p.add_argument("--status", choices=client.STATUSES, help="only jobs in this status")
    p.add_argument("--command", help="only jobs of this command")
    p.add_argument("--limit", type=_positive_int, default=20, metavar="N", help="(default: 20)")
    p.add_argument("--json", action="store_true", help="one JSON document per line")
    settings_flags(p, CONNECTION_FIELDS)
    p.set_defaults(func=cmd_list)


# ------------------------------------------------------------------------------ the commands


def cmd_submit(ns: argparse.Namespace) -> int:
    settings = settings_of(ns)
    try:
        args = json.loads(ns.args)
    except json.JSONDecodeError as exc:
        return _fail(f"--args is not valid JSON: {exc}", EXIT_CONFIG)
    if not isinstance(args, dict):
        return _fail("--args must be a JSON object", EXIT_CONFIG)
    run_at = ns.run_at
    if ns.delay_s is not None:
        run_at = datetime.now(UTC) + timedelta(seconds=ns.delay_s)
    job_id = ns.job_id or client.new_job(ns.command)[model.JOB_ID]

    async def insert(db: Any) -> None:
        await client.submit(
            db,
            ns.command,
            args,
            job_id=job_id,
            jobs=settings.jobs_collection,
            priority=ns.priority,
            run_at=run_at,
        )

    if not ns.wait:
        with_db(settings, insert)
        print(job_id)
        return EXIT_OK
    return _wait_around(settings, job_id, ns.timeout_s, insert, min_run=1)


def cmd_status(ns: argparse.Namespace) -> int:
    settings = settings_of(ns)

    async def read(db: Any) -> tuple[Any, Any]:
        return await client.job_status(
            db, ns.job_id, jobs=settings.jobs_collection, results=settings.results_collection
        )

    job, result = with_db(settings, read)
    if job is None and result is None:
        if cli_workflows.print_status(settings, ns.job_id, as_json=ns.json) == EXIT_OK:
            return EXIT_OK
        return _fail(f"no job with job_id {ns.job_id!r} (see: reactor list)", EXIT_NOT_FOUND)
    print(to_json({"job": job, "result": result}) if ns.json else job_view.status_page(job, result))
    return EXIT_OK


def cmd_cancel(ns: argparse.Namespace) -> int:
    settings = settings_of(ns)
    after: dict[str, Any] = {}

    async def request(db: Any) -> None:
        after.update(await client.cancel(db, ns.job_id, jobs=settings.jobs_collection))

    if not ns.wait:
        with_db(settings, request)
        print(f"cancel requested for {ns.job_id}")
        return EXIT_OK

    async def request_then_run(db: Any) -> int:
        await request(db)
        return client.run_of(after)

    return _wait_around(settings, ns.job_id, ns.timeout_s, request_then_run, wanted="cancelled")


def cmd_retry(ns: argparse.Namespace) -> int:
    settings = settings_of(ns)

    async def requeue(db: Any) -> int:
        before = await client.retry(db, ns.job_id, jobs=settings.jobs_collection)
        return client.run_of(before) + 1

    if not ns.wait:
        run = with_db(settings, requeue)
        print(f"{ns.job_id} queued again for run {run}")
        return EXIT_OK
    return _wait_around(settings, ns.job_id, ns.timeout_s, requeue)


def cmd_list(ns: argparse.Namespace) -> int:
    settings = settings_of(ns)

    async def read(db: Any) -> list[dict[str, Any]]:
        return await client.list_jobs(
            db,
            status=ns.status,
            command=ns.command,
            limit=ns.limit,
            jobs=settings.jobs_collection,
        )

    jobs = with_db(settings, read)
    if ns.json:
        for job in jobs:
            print(to_json(job, indent=None))
    else:
        print(job_view.list_table(jobs))
    return EXIT_OK


# ------------------------------------------------------------------------------ helpers


def _wait_around(
    settings: Settings,
    job_id: str,
    timeout_s: float,
    action: Callable[[Any], Awaitable[int | None]],
    *,
    min_run: int | None = None,
    wanted: str = "succeeded",
) -> int:
    """Run ``action`` (which may return the run whose result counts), then wait for that result.

    Nothing can be missed by waiting only afterwards: the wait opens its change stream first and
    then reads the result already stored, keeping it only if it belongs to that run or a later one.
    """

    async def main() -> dict[str, Any] | None:
        mongo = await connect(settings)
        try:
            db = mongo[settings.db]
            found = await action(db)
            run = found if found is not None else (min_run or 1)
            try:
                return await client.wait_for_result(
                    db,
                    job_id,
                    timeout_s=timeout_s,
                    results=settings.results_collection,
                    min_run=run,
                )
            except TimeoutError:
                return None
        finally:
            await mongo.close()

    result = anyio.run(main)
    if result is None:
        return _fail(f"no result for {job_id} within {timeout_s:g} s", EXIT_WAIT_TIMEOUT)
    print(to_json(result))
    return EXIT_OK if result.get(model.STATUS) == wanted else EXIT_JOB_FAILED


def _fail(message: str, code: int) -> int:
    print(f"reactor: {message}", file=sys.stderr)
    return code


def _iso_datetime(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 date and time: {text!r}") from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _priority(text: str) -> float:
    """``--priority``: an integer stays one; otherwise a finite number (model.PRIORITY_RULE)."""
    value: Any
    try:
        value = int(text)
    except ValueError:
        try:
            value = float(text)
        except ValueError:
            value = text
    problem = model.priority_problem(value)
    if problem is not None:
        raise argparse.ArgumentTypeError(problem)
    return value  # type: ignore[no-any-return]


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value
