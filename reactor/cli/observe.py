"""``reactor logs`` and ``reactor workers``: a job's own log, and the fleet of running reactors."""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping, Sequence
from typing import Any

from reactor import client, job_view
from reactor.cli.support import (
    CONNECTION_FIELDS,
    EXIT_OK,
    Formatter,
    settings_flags,
    settings_of,
    to_json,
    with_db,
)

Sub = Any
LOG_CORE = ("timestamp", "level", "event", "logger", "job_id", "command", "attempt", "run")
WORKERS_HEADER = ("NAME", "HOST", "PID", "VERSION", "IN_FLIGHT", "CPU%", "RSS_MB", "LAST_SEEN")


def add_commands(sub: Sub) -> None:
    logs = sub.add_parser(
        "logs",
        help="print what a job's handler logged and printed",
        description="Print a job's own log: what its handler logged and printed in one run (the\n"
        "latest by default), kept in the job's directory under jobs_root (bounded by\n"
        "REACTOR_JOB_LOG_MAX_BYTES). --json prints the raw JSON lines.",
        formatter_class=Formatter,
    )
    logs.add_argument("job_id")
    logs.add_argument("--run", type=int, default=None, help="which run (default: the latest)")
    logs.add_argument("--json", action="store_true", help="print the JSON lines as stored")
    settings_flags(logs, (*CONNECTION_FIELDS, "jobs_root"))
    logs.set_defaults(func=cmd_logs)
    workers = sub.add_parser(
        "workers",
        help="list the running reactors (the fleet)",
        description="List the reactors seen within REACTOR_FLEET_TTL_S (reactor_workers): host,\n"
        "pid, version, jobs in flight and their latest CPU and memory sample.",
        formatter_class=Formatter,
    )
    workers.add_argument("--json", action="store_true", help="print the documents as JSON")
    settings_flags(workers, (*CONNECTION_FIELDS, "fleet_ttl_s"))
    workers.set_defaults(func=cmd_workers)


def cmd_logs(ns: argparse.Namespace) -> int:
    settings = settings_of(ns)

    async def read(db: Any) -> tuple[int, list[dict[str, Any]], int]:
        return await client.job_log(db, settings.jobs_root, ns.job_id, run=ns.run,
                                    limit=10**9, jobs=settings.jobs_collection)  # fmt: skip

    run, lines, _ = with_db(settings, read)
    if ns.json:
        for line in lines:
            print(json.dumps(line))
    elif not lines:
        print(f"nothing logged for run {run} of {ns.job_id}")
    else:
        print("\n".join(log_line(line) for line in lines))
    return EXIT_OK


def cmd_workers(ns: argparse.Namespace) -> int:
    settings = settings_of(ns)

    async def read(db: Any) -> list[dict[str, Any]]:
        return await client.workers(db, ttl_s=settings.fleet_ttl_s)

    found = with_db(settings, read)
    if ns.json:
        for doc in found:
            print(to_json(doc, indent=None))
    else:
        print(workers_table(found))
    return EXIT_OK


def log_line(line: Mapping[str, Any]) -> str:
    """One stored log line as people read it: time, level, event, then the other fields."""
    rest = " ".join(
        f"{key}={json.dumps(value, default=str)}"
        for key, value in line.items()
        if key not in LOG_CORE
    )
    head = f"{line.get('timestamp', '-')} {line.get('level', '-')!s:<7} {line.get('event', '-')}"
    return f"{head} {rest}".rstrip()


def workers_table(docs: Sequence[Mapping[str, Any]]) -> str:
    """The fleet, one reactor per row, with its latest sample."""
    rows = [WORKERS_HEADER]
    for doc in docs:
        samples = doc.get("samples") or [{}]
        latest = samples[-1] if isinstance(samples[-1], Mapping) else {}
        rows.append((
            str(doc.get("name", "-")), str(doc.get("host", "-")), str(doc.get("pid", "-")),
            str(doc.get("version", "-")), str(doc.get("in_flight", "-")),
            str(latest.get("cpu_percent", "-")), str(latest.get("rss_mb", "-")),
            job_view.when(doc.get("last_seen")),
        ))  # fmt: skip
    if len(rows) == 1:
        return "no reactor seen within the fleet TTL"
    widths = [max(len(row[i]) for row in rows) for i in range(len(WORKERS_HEADER))]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    )
