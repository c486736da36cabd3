"""What every ``reactor`` subcommand shares: settings flags, exit codes, connecting, JSON output."""

from __future__ import annotations

import argparse
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import anyio
from bson import json_util

from reactor.config import Settings, env_name, load_settings
from reactor.errors import (
    DuplicateJob,
    DuplicateWorkflow,
    JobNotFound,
    JobStateConflict,
    ReactorError,
    WorkflowNotFound,
    WorkflowStateConflict,
)

# Exit codes, documented in `reactor --help` and the README.
EXIT_OK = 0
EXIT_JOB_FAILED = 1  # the job (or the result waited for) did not succeed
EXIT_CONFIG = 2  # invalid setting, unreachable MongoDB, handlers that cannot load
EXIT_WAIT_TIMEOUT = 3  # --wait gave up before a result arrived
EXIT_DUPLICATE = 4  # submit: a job (or workflow) with that id exists already
EXIT_NOT_FOUND = 5  # status, cancel, retry: no job (or workflow, template) with that id
EXIT_CONFLICT = 6  # cancel a finished job, retry an unfinished one (workflows alike)

EXIT_CODES_TEXT = """\
exit codes:
  0  success (with --wait: the job succeeded, or was cancelled as asked)
  1  the job failed (or finished otherwise than asked)
  2  configuration or connection error
  3  --wait timed out before a result arrived
  4  submit: a job (or workflow) with that id already exists
  5  no job (or workflow, or template) with that id
  6  the status does not allow it (cancel a finished job, retry an unfinished one)"""

CONNECTION_FIELDS = (
    "mongo_uri",
    "db",
    "jobs_collection",
    "results_collection",
    "connect_timeout_s",
)


def exit_code(error: ReactorError) -> int:
    """The exit code of an error that ends a subcommand."""
    if isinstance(error, DuplicateJob | DuplicateWorkflow):
        return EXIT_DUPLICATE
    if isinstance(error, JobNotFound | WorkflowNotFound):
        return EXIT_NOT_FOUND
    if isinstance(error, JobStateConflict | WorkflowStateConflict):
        return EXIT_CONFLICT
    return EXIT_CONFIG


def settings_flags(parser: argparse.ArgumentParser, fields: Iterable[str]) -> None:
    """One ``--flag`` per settings field, described by the field and its variable."""
    for name in fields:
        info = Settings.model_fields[name]
        parser.add_argument(
            f"--{name.replace('_', '-')}",
            dest=f"setting_{name}",
            default=None,
            metavar=name.split("_")[-1].upper(),
            help=f"{info.description} [{env_name(name)}]",
        )


def settings_of(ns: argparse.Namespace) -> Settings:
    """The settings: environment variables, overridden by the flags that were given."""
    flags = {
        key.removeprefix("setting_"): value
        for key, value in vars(ns).items()
        if key.startswith("setting_") and value is not None
    }
    return load_settings(**flags)


async def connect(settings: Settings) -> Any:
    """A connected client (``ConfigError`` with advice when MongoDB cannot be reached)."""
    from reactor.connect import connect as connect_checked

    return await connect_checked(settings)


Sub = Any  # argparse's _SubParsersAction, which has no public name


def subparser(sub: Sub, name: str, summary: str, description: str) -> argparse.ArgumentParser:
    """A subcommand's parser with its one-line help and its description."""
    parser: argparse.ArgumentParser = sub.add_parser(
        name, help=summary, description=description, formatter_class=Formatter
    )
    return parser


def with_db(settings: Settings, action: Callable[[Any], Awaitable[Any]]) -> Any:
    """Run ``action`` on the settings' database with a client connected for it alone."""

    async def main() -> Any:
        mongo = await connect(settings)
        try:
            return await action(mongo[settings.db])
        finally:
            await mongo.close()

    return anyio.run(main)


def to_json(doc: Any, *, indent: int | None = 2) -> str:
    """A document as relaxed extended JSON (dates as ISO strings)."""
    return json_util.dumps(doc, indent=indent, json_options=json_util.RELAXED_JSON_OPTIONS)


class Formatter(argparse.RawDescriptionHelpFormatter):
    """Keeps the line breaks of descriptions and epilogs; wraps argument help as usual."""
