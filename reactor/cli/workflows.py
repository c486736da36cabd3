"""``reactor workflow``: submit, run a template, cancel, retry, status, templates.

Like the job subcommands they only read and write documents (:mod:`reactor.workflows.client`);
running reactors do the work.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio

from reactor.cli.support import (
    CONNECTION_FIELDS,
    EXIT_JOB_FAILED,
    EXIT_NOT_FOUND,
    EXIT_OK,
    EXIT_WAIT_TIMEOUT,
    Formatter,
    connect,
    settings_flags,
    settings_of,
    subparser,
    to_json,
    with_db,
)
from reactor.config import Settings
from reactor.workflows import client, view

DEFAULT_WAIT_S = 600.0
FIELDS = (*CONNECTION_FIELDS, "workflows_collection", "templates_collection")
Sub = Any


def add_command(sub: Sub) -> None:
    """Register ``reactor workflow`` and its subcommands on ``sub``."""
    parser = sub.add_parser(
        "workflow",
        help="submit, run, cancel, re-run and inspect workflows",
        description="Workflows: steps whose results feed the next, in the workflows collection.\n"
        "See docs/workflows.md for the document and its references.",
        formatter_class=Formatter,
    )
    commands = parser.add_subparsers(required=True, metavar="SUBCOMMAND")
    _submit(commands)
    _run(commands)
    _cancel(commands)
    _retry(commands)
    _status(commands)
    _template(commands)


def _wait_flags(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument("--wait", action="store_true", help=f"wait until {what}, print it")
    parser.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_WAIT_S,
        metavar="S",
        help=f"seconds --wait waits (default: {DEFAULT_WAIT_S:g})",
    )
    settings_flags(parser, FIELDS)


def _submit(sub: Sub) -> None:
    p = subparser(
        sub,
        "submit",
        "insert a workflow from a JSON or YAML file",
        "Check a workflow document (FILE.json, FILE.yaml) and insert it; print its\n"
        "workflow_id, or with --wait the finished workflow.",
    )
    p.add_argument("file", type=Path)
    _wait_flags(p, "the workflow has finished")
    p.set_defaults(func=cmd_submit)


def _run(sub: Sub) -> None:
    p = subparser(
        sub,
        "run",
        "run a stored (or shipped) template with parameters",
        "Make a workflow from the template NAME (workflow_templates, else shipped ones\n"
        "such as ocr_document) with --param name=value (a JSON value, else a string)\n"
        "and insert it.",
    )
    p.add_argument("name")
    p.add_argument("--param", action="append", default=[], metavar="K=V", type=_param)
    p.add_argument("--workflow-id", help="the new workflow's id (default: NAME-<random>)")
    p.add_argument("--callback-url", help="POST the finished workflow there")
    _wait_flags(p, "the workflow has finished")
    p.set_defaults(func=cmd_run)


def _cancel(sub: Sub) -> None:
    p = subparser(
        sub,
        "cancel",
        "cancel a workflow: its running and queued steps too",
        "Set cancel_requested on an unfinished workflow: its step jobs that are queued or\n"
        "running are cancelled through the job cancel, and no further step starts.",
    )
    p.add_argument("workflow_id")
    _wait_flags(p, "the workflow has finished")
    p.set_defaults(func=cmd_cancel)


def _retry(sub: Sub) -> None:
    p = subparser(
        sub,
        "retry",
        "run a failed or cancelled workflow's failed steps again",
        "Set a finished failed or cancelled workflow back to queued: its failed and\n"
        "cancelled step jobs run again (a new run of each) and the steps after them\n"
        "follow; succeeded steps keep their results.",
    )
    p.add_argument("workflow_id")
    _wait_flags(p, "the new run has finished")
    p.set_defaults(func=cmd_retry)


def _status(sub: Sub) -> None:
    p = subparser(
        sub,
        "status",
        "show a workflow as a tree of its steps",
        "Show a workflow: its status, progress, times, and each step with its jobs.\n"
        "--json prints {workflow, jobs}. (reactor status WORKFLOW_ID does the same.)",
    )
    p.add_argument("workflow_id")
    p.add_argument("--json", action="store_true")
    settings_flags(p, FIELDS)
    p.set_defaults(func=cmd_status)


def _template(sub: Sub) -> None:
    p = subparser(
        sub,
        "template",
        "store and list templates",
        "Templates: workflow definitions stored by name, run with reactor workflow run.",
    )
    commands = p.add_subparsers(required=True, metavar="ACTION")
    put = subparser(
        commands,
        "put",
        "store a template from a JSON or YAML file",
        "Store the template in FILE under its name (replacing one of that name).",
    )
    put.add_argument("file", type=Path)
    settings_flags(put, FIELDS)
    put.set_defaults(func=cmd_template_put)
    listing = subparser(
        commands,
        "list",
        "list stored and shipped templates",
        "List the templates: stored ones, then shipped ones.",
    )
    listing.add_argument("--json", action="store_true")
    settings_flags(listing, FIELDS)
    listing.set_defaults(func=cmd_template_list)


# ------------------------------------------------------------------------------ the commands


def cmd_submit(ns: argparse.Namespace) -> int:
    settings = settings_of(ns)
    doc = client.load_file(ns.file)

    async def insert(db: Any) -> int:
        await client.submit(db, doc, workflows=settings.workflows_collection)
        return 1

    return _then_wait(ns, settings, str(doc.get("workflow_id")), insert)


def cmd_run(ns: argparse.Namespace) -> int:
    settings = settings_of(ns)
    found: dict[str, str] = {}

    async def insert(db: Any) -> int:
        found["id"] = await client.run_template(
            db,
            ns.name,
            dict(ns.param),
            workflow_id=ns.workflow_id,
            callback_url=ns.callback_url,
            workflows=settings.workflows_collection,
            templates_collection=settings.templates_collection,
        )
        return 1

    return _then_wait(ns, settings, lambda: found["id"], insert)


def cmd_cancel(ns: argparse.Namespace) -> int:
    settings = settings_of(ns)

    async def request(db: Any) -> int:
        after = await client.cancel(db, ns.workflow_id, workflows=settings.workflows_collection)
        return client.run_of(after)

    return _then_wait(
        ns,
        settings,
        ns.workflow_id,
        request,
        wanted="cancelled",
        said=f"cancel requested for {ns.workflow_id}",
    )


def cmd_retry(ns: argparse.Namespace) -> int:
    settings = settings_of(ns)

    async def requeue(db: Any) -> int:
        before = await client.retry(db, ns.workflow_id, workflows=settings.workflows_collection)
        return client.run_of(before) + 1

    return _then_wait(ns, settings, ns.workflow_id, requeue, said=f"{ns.workflow_id} queued again")


def cmd_status(ns: argparse.Namespace) -> int:
    settings = settings_of(ns)
    found = print_status(settings, ns.workflow_id, as_json=ns.json)
    if found == EXIT_NOT_FOUND:
        print(f"reactor: no workflow with workflow_id {ns.workflow_id!r}")
    return found


def print_status(settings: Settings, workflow_id: str, *, as_json: bool) -> int:
    """Print a workflow's tree (or JSON); ``EXIT_NOT_FOUND`` when there is no such workflow."""

    async def read(db: Any) -> tuple[Any, Any]:
        return await client.status(
            db, workflow_id, workflows=settings.workflows_collection, jobs=settings.jobs_collection
        )

    workflow, jobs = with_db(settings, read)
    if workflow is None:
        return EXIT_NOT_FOUND
    print(to_json({"workflow": workflow, "jobs": jobs}) if as_json else view.tree(workflow, jobs))
    return EXIT_OK


def cmd_template_put(ns: argparse.Namespace) -> int:
    settings = settings_of(ns)
    doc = client.load_file(ns.file)

    async def store(db: Any) -> str:
        return await client.put_template(
            db, doc, templates_collection=settings.templates_collection
        )

    print(f"template {with_db(settings, store)} stored")
    return EXIT_OK


def cmd_template_list(ns: argparse.Namespace) -> int:
    settings = settings_of(ns)

    async def read(db: Any) -> list[dict[str, Any]]:
        return await client.list_templates(db, templates_collection=settings.templates_collection)

    for found in with_db(settings, read):
        if ns.json:
            print(json.dumps(found))
        else:
            print(
                f"{found['name']}  ({found['source']})  {found.get('description') or ''}".rstrip()
            )
    return EXIT_OK


# ------------------------------------------------------------------------------ helpers


def _then_wait(
    ns: argparse.Namespace,
    settings: Settings,
    workflow_id: str | Callable[[], str],
    action: Callable[[Any], Awaitable[int]],
    *,
    wanted: str = "succeeded",
    said: str | None = None,
) -> int:
    """Run ``action`` (which returns the run that counts), then, with --wait, wait for it."""

    async def main() -> dict[str, Any] | int:
        mongo = await connect(settings)
        try:
            db = mongo[settings.db]
            run = await action(db)
            key = workflow_id() if callable(workflow_id) else workflow_id
            if not ns.wait:
                print(said or key)
                return EXIT_OK
            try:
                return await client.wait(
                    db,
                    key,
                    timeout_s=ns.timeout,
                    min_run=run,
                    workflows=settings.workflows_collection,
                )
            except TimeoutError:
                print(f"reactor: {key} did not finish within {ns.timeout:g} s")
                return EXIT_WAIT_TIMEOUT
        finally:
            await mongo.close()

    found = anyio.run(main)
    if isinstance(found, int):
        return found
    print(to_json({k: v for k, v in found.items() if k != "steps"}))
    return EXIT_OK if found.get("status") == wanted else EXIT_JOB_FAILED


def _param(text: str) -> tuple[str, Any]:
    name, sep, raw = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    try:
        return name, json.loads(raw)
    except ValueError:
        return name, raw
