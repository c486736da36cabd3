"""``reactor migrate``: what startup would do with a polling loop's collections, or do it now."""

from __future__ import annotations

import argparse
from typing import Any

import anyio

from reactor import adopt
from reactor import index_plan as indexes
from reactor.cli.support import (
    CONNECTION_FIELDS,
    EXIT_CONFIG,
    EXIT_OK,
    Formatter,
    settings_flags,
    settings_of,
)
from reactor.connect import connect
from reactor.store import Store

DESCRIPTION = """\
Adopt the jobs and results a polling loop left behind. A job without status whose job_id
already has a result is adopted: its status is set from that result (a result with error,
exception or traceback counts as failed), so it is never run again. Jobs without status and
without a result stay queued and will run. Duplicate job_id values stop startup; they are
listed here. An existing index the reactor cannot use (a job_id index that is not unique, say)
stops startup too: --check names it and what --apply does, --apply replaces it. --check (the
default) only reports, and exits 2 when startup would stop; --apply ensures the indexes and
adopts, as "reactor run" does at startup."""


def add_command(sub: Any) -> None:
    parser = sub.add_parser(
        "migrate",
        help="report (--check) or do (--apply) the adoption of existing collections",
        description=DESCRIPTION,
        formatter_class=Formatter,
    )
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--check", action="store_true", help="report what startup would do (default)")
    mode.add_argument("--apply", action="store_true", help="ensure the indexes and adopt now")
    settings_flags(parser, CONNECTION_FIELDS)
    parser.set_defaults(func=cmd_migrate)


def cmd_migrate(ns: argparse.Namespace) -> int:
    settings = settings_of(ns)

    async def main() -> int:
        client = await connect(settings)
        try:
            store = Store(
                client[settings.db],
                jobs=settings.jobs_collection,
                results=settings.results_collection,
                owner="reactor-migrate",
                lease_s=settings.lease_s,
                timeout_s=settings.mongo_timeout_s,
            )
            return await _migrate(store, apply=bool(ns.apply))
        finally:
            await client.close()

    return anyio.run(main)


async def _migrate(store: Store, *, apply: bool) -> int:
    if any([await adopt.duplicates(store.jobs), await adopt.duplicates(store.results)]):
        print(f"startup would stop: {await adopt.duplicates_message(store)}")
        return EXIT_CONFIG
    if apply:
        decisions = await adopt.ensure_indexes(store, replace=True)
    else:
        decisions = await store.index_decisions()
    for decision in decisions:
        if decision.action is not indexes.Action.HAVE:
            print(decision.describe(applied=apply))
    in_the_way = [d for d in decisions if d.action is indexes.Action.REPLACE and not apply]
    if in_the_way:
        print(f"startup would stop: {indexes.conflict_message(in_the_way)}")
    plan = await adopt.adopt(store, apply=apply)
    print(plan.describe(applied=apply))
    return EXIT_CONFIG if in_the_way else EXIT_OK
