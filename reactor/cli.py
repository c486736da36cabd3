"""``reactor``: run, submit, status, handlers, dev-mongo, demo."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from collections.abc import Sequence
from typing import Any

import anyio
from bson import json_util

from reactor.config import Settings, env_name, load_settings
from reactor.errors import ReactorError
from reactor.logging import configure, get_logger

log = get_logger("reactor.cli")

CONNECTION_FIELDS = (
    "mongo_uri",
    "db",
    "jobs_collection",
    "results_collection",
    "connect_timeout_s",
)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script."""
    parser = build_parser()
    ns = parser.parse_args(argv)
    try:
        return int(ns.func(ns))
    except (ReactorError, BaseExceptionGroup) as exc:
        error = reactor_error(exc)
        if error is None:
            raise
        print(f"reactor: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `reactor status X | head`: the reader left, nothing to report
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


def reactor_error(exc: BaseException) -> ReactorError | None:
    """The ReactorError behind ``exc``, also when task groups wrapped it; None for anything else."""
    if isinstance(exc, ReactorError):
        return exc
    if isinstance(exc, BaseExceptionGroup):
        errors = [reactor_error(inner) for inner in exc.exceptions]
        if errors and all(e is not None for e in errors):
            return errors[0]
    return None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="reactor", description=__doc__)
    sub = parser.add_subparsers(required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="run the reactor until SIGTERM or SIGINT")
    _settings_flags(run, Settings.model_fields)
    run.set_defaults(func=cmd_run)

    submit = sub.add_parser("submit", help="insert a job; with --wait, print its result")
    submit.add_argument("command", help="the handler name")
    submit.add_argument("--args", default="{}", help="the job's args as a JSON object")
    submit.add_argument("--job-id", help="the job's id (default: a random one)")
    submit.add_argument("--wait", action="store_true", help="wait and print the result")
    submit.add_argument("--timeout", type=float, default=60.0, help="seconds --wait waits")
    _settings_flags(submit, CONNECTION_FIELDS)
    submit.set_defaults(func=cmd_submit)

    status = sub.add_parser("status", help="print a job and its result")
    status.add_argument("job_id")
    _settings_flags(status, CONNECTION_FIELDS)
    status.set_defaults(func=cmd_status)

    handlers = sub.add_parser("handlers", help="list the registered handlers")
    handlers.set_defaults(func=cmd_handlers)

    dev = sub.add_parser("dev-mongo", help="run the MongoDB test double and print its URI")
    dev.add_argument("--port", type=int, default=27017)
    dev.add_argument("--host", default="127.0.0.1")
    dev.set_defaults(func=cmd_dev_mongo)

    demo = sub.add_parser("demo", help="start the double and a reactor, run sample jobs, exit")
    demo.set_defaults(func=cmd_demo)
    return parser


def _settings_flags(parser: argparse.ArgumentParser, fields: Any) -> None:
    for name in fields:
        info = Settings.model_fields[name]
        parser.add_argument(
            f"--{name.replace('_', '-')}",
            dest=f"setting_{name}",
            default=None,
            metavar=name.split("_")[-1].upper(),
            help=f"{info.description} [{env_name(name)}]",
        )


def _settings(ns: argparse.Namespace) -> Settings:
    flags = {
        key.removeprefix("setting_"): value
        for key, value in vars(ns).items()
        if key.startswith("setting_") and value is not None
    }
    return load_settings(**flags)


def cmd_run(ns: argparse.Namespace) -> int:
    settings = _settings(ns)
    configure(
        settings.log_format,
        settings.log_level,
        show_locals=settings.log_locals,
        max_line_bytes=settings.log_max_line_bytes,
    )
    from reactor.service import Reactor

    async def main() -> None:
        reactor = Reactor(settings)
        async with anyio.create_task_group() as tg:
            tg.start_soon(_stop_on_signal, reactor, tg.cancel_scope)
            await reactor.serve()
            tg.cancel_scope.cancel()

    anyio.run(main)
    return 0


async def _stop_on_signal(reactor: Any, scope: anyio.CancelScope) -> None:
    with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async for signum in signals:
            if reactor.stopping:
                log.warning("reactor_forced_stop", signal=signal.Signals(signum).name)
                scope.cancel()
                return
            log.info("reactor_stop_requested", signal=signal.Signals(signum).name)
            reactor.stop()


def cmd_submit(ns: argparse.Namespace) -> int:
    from reactor import client

    settings = _settings(ns)
    try:
        args = json.loads(ns.args)
    except json.JSONDecodeError as exc:
        print(f"reactor: --args is not valid JSON: {exc}", file=sys.stderr)
        return 2

    async def main() -> int:
        mongo = await _connect(settings)
        try:
            db = mongo[settings.db]
            job_id = ns.job_id or client.new_job(ns.command)["job_id"]
            if not ns.wait:
                await client.submit(
                    db, ns.command, args, job_id=job_id, jobs=settings.jobs_collection
                )
                print(job_id)
                return 0
            async with anyio.create_task_group() as tg:
                waiter = _Waiter(db, job_id, ns.timeout, settings.results_collection)
                await tg.start(waiter.run)
                await client.submit(
                    db, ns.command, args, job_id=job_id, jobs=settings.jobs_collection
                )
            return waiter.report()
        finally:
            await mongo.close()

    return anyio.run(main)


class _Waiter:
    """Waits for one result; started before the job is inserted so it cannot miss it."""

    def __init__(self, db: Any, job_id: str, timeout_s: float, results: str) -> None:
        self.db, self.job_id, self.timeout_s, self.results = db, job_id, timeout_s, results
        self.result: dict[str, Any] | None = None

    async def run(self, *, task_status: Any = anyio.TASK_STATUS_IGNORED) -> None:
        from reactor import client

        task_status.started()
        try:
            self.result = await client.wait_for_result(
                self.db, self.job_id, timeout_s=self.timeout_s, results=self.results
            )
        except TimeoutError:
            self.result = None

    def report(self) -> int:
        if self.result is None:
            print(
                f"reactor: no result for {self.job_id} within {self.timeout_s:g} s", file=sys.stderr
            )
            return 3
        print(_to_json(self.result))
        return 0 if self.result.get("status") == "succeeded" else 1


def cmd_status(ns: argparse.Namespace) -> int:
    from reactor import client

    settings = _settings(ns)

    async def main() -> int:
        mongo = await _connect(settings)
        try:
            job, result = await client.job_status(
                mongo[settings.db],
                ns.job_id,
                jobs=settings.jobs_collection,
                results=settings.results_collection,
            )
        finally:
            await mongo.close()
        if job is None and result is None:
            print(f"reactor: no job {ns.job_id!r}", file=sys.stderr)
            return 1
        print(_to_json({"job": job, "result": result}))
        return 0

    return anyio.run(main)


def cmd_handlers(ns: argparse.Namespace) -> int:
    from reactor.registry import load_registry

    rows = [("COMMAND", "RUNS", "ENTRY POINT", "VERSION")]
    rows += [(h.name, h.runs.value, h.source, h.version or "-") for h in load_registry()]
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    for row in rows:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
    return 0


def cmd_dev_mongo(ns: argparse.Namespace) -> int:
    from reactor.testing import MongoDouble

    stop_signals = {signal.SIGINT, signal.SIGTERM}
    signal.pthread_sigmask(signal.SIG_BLOCK, stop_signals)  # the server thread inherits this
    double = MongoDouble(ns.host, ns.port).start()
    print(f"mongo-reactor test double listening; REACTOR_MONGO_URI={double.uri}", flush=True)
    try:
        signal.sigwait(stop_signals)
    finally:
        double.stop()
    return 0


def cmd_demo(ns: argparse.Namespace) -> int:
    from reactor.demo import run_demo

    return run_demo()


async def _connect(settings: Settings) -> Any:
    from reactor.connect import connect

    return await connect(settings)


def _to_json(doc: Any) -> str:
    return json_util.dumps(doc, indent=2, json_options=json_util.RELAXED_JSON_OPTIONS)


if __name__ == "__main__":
    sys.exit(main())
