"""The ``reactor`` command: run the service, and submit, inspect, cancel and retry jobs."""

from __future__ import annotations

import argparse
import os
import signal
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import anyio

from reactor import __version__
from reactor.cli import jobs as cli_jobs
from reactor.cli import migrate as cli_migrate
from reactor.cli import observe as cli_observe
from reactor.cli import workflows as cli_workflows
from reactor.cli.support import (
    EXIT_CODES_TEXT,
    EXIT_CONFIG,
    Formatter,
    exit_code,
    settings_flags,
    settings_of,
)
from reactor.config import Settings
from reactor.errors import ReactorError
from reactor.logging import configure, get_logger

if TYPE_CHECKING:
    from reactor.registry import Registry

log = get_logger("reactor.cli")

DESCRIPTION = """\
mongo-reactor turns MongoDB job documents into result documents. Clients insert
{job_id, command, args} into the jobs collection; "reactor run" watches it with a change
stream, runs the handler named by command, and writes one result per job to results.
Every setting is a REACTOR_* environment variable and a flag of "reactor run"."""


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
        return exit_code(error)
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
    parser = argparse.ArgumentParser(
        prog="reactor", description=DESCRIPTION, epilog=EXIT_CODES_TEXT, formatter_class=Formatter
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(required=True, metavar="COMMAND")
    _add_run(sub)
    cli_jobs.add_commands(sub)
    cli_workflows.add_command(sub)
    cli_observe.add_commands(sub)
    cli_migrate.add_command(sub)
    _add_service_commands(sub)
    return parser


def _add_run(sub: Any) -> None:
    run = sub.add_parser(
        "run",
        help="run the reactor until SIGTERM or SIGINT",
        description="Run the reactor: watch the jobs collection, run each job's handler and write\n"
        "its result, until SIGTERM or SIGINT (a second signal stops at once). Every setting is a\n"
        "flag below and a REACTOR_* environment variable; the flag wins.",
        formatter_class=Formatter,
    )
    settings_flags(run, Settings.model_fields)
    run.set_defaults(func=cmd_run)


def _add_service_commands(sub: Any) -> None:
    """``handlers``, ``dev-mongo`` and ``demo``."""
    handlers = sub.add_parser(
        "handlers",
        help="list the registered handlers",
        description="List the commands this reactor would serve: the installed entry points of\n"
        "the reactor.handlers group and the functions of REACTOR_HANDLER_MODULES, with where\n"
        "each runs (loop, thread or process) and where it comes from.",
        formatter_class=Formatter,
    )
    settings_flags(handlers, ("handler_modules", "handler_import_timeout_s"))
    handlers.set_defaults(func=cmd_handlers)
    dev = sub.add_parser(
        "dev-mongo",
        help="run the MongoDB test double and print its URI",
        description="Run mongo-reactor's in-process MongoDB wire-protocol double (a one-member\n"
        "replica set with change streams and indexes) until SIGINT or SIGTERM, and print\n"
        "the REACTOR_MONGO_URI to use. For trying the reactor and for tests; it keeps its data\n"
        "in memory only.",
        formatter_class=Formatter,
    )
    dev.add_argument("--port", type=int, default=27017, help="port to listen on (default: 27017)")
    dev.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)")
    dev.add_argument(
        "--server-version",
        choices=("7.0", "8.0"),
        default="8.0",
        help="MongoDB release to pose as: its wire version, and 7.0 has no bulkWrite "
        "(default: 8.0)",
    )
    dev.set_defaults(func=cmd_dev_mongo)
    demo = sub.add_parser(
        "demo",
        help="start the double and a reactor, run sample jobs and the lifecycle tour, exit",
        description="Start the MongoDB double and a reactor in this process, submit one job of\n"
        "each kind (and each kind of bad input) and print their results; then the lifecycle\n"
        "tour: cancel of a running job, a re-run, priorities, a delayed job, progress and a\n"
        "retry with back-off, each once, with its timing.",
        formatter_class=Formatter,
    )
    demo.add_argument("--tour", action="store_true", help="the lifecycle tour only")
    demo.set_defaults(func=cmd_demo)


def cmd_run(ns: argparse.Namespace) -> int:
    settings = settings_of(ns)
    configure(
        settings.log_format,
        settings.log_level,
        show_locals=settings.log_locals,
        max_line_bytes=settings.log_max_line_bytes,
    )
    from reactor.service import Reactor

    registry = _load_handlers(settings)  # first: a module that never finishes importing ends here

    async def main() -> None:
        reactor = Reactor(settings, registry=registry, exit_on_wedge=True)
        async with anyio.create_task_group() as tg:
            tg.start_soon(_stop_on_signal, reactor)
            await reactor.serve()
            tg.cancel_scope.cancel()

    try:
        anyio.run(main)
    except (ReactorError, BaseExceptionGroup) as exc:
        if reactor_error(exc) is None:
            log.critical("reactor_crashed", exc_info=exc)
            _exit(EXIT_CRASHED)
        raise
    except Exception as exc:  # crash-only: anything unexpected ends the process loudly
        log.critical("reactor_crashed", exc_info=exc)
        _exit(EXIT_CRASHED)
    _exit(0)
    return 0


EXIT_CRASHED = 70


def _exit(code: int) -> None:
    """Exit now, even if abandoned handler threads are still running (they cannot be killed)."""
    import threading

    left = [t.name for t in threading.enumerate() if t.is_alive() and not t.daemon]
    left = [name for name in left if name != threading.current_thread().name]
    if left or code:
        if left:
            log.warning("threads_abandoned_at_exit", threads=left[:20], count=len(left))
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


HARD_STOP_MARGIN_S = 4.0  # past the drain, the process exits whatever still runs
FORCED_STOP_S = 2.0  # after a second signal


async def _stop_on_signal(reactor: Any) -> None:
    from reactor import hardstop

    with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async for signum in signals:
            name = signal.Signals(signum).name
            if reactor.stopping:
                log.warning("reactor_forced_stop", signal=name)
                hardstop.arm(FORCED_STOP_S, reason=f"second {name}")
                reactor.stop(force=True)
                return
            log.info("reactor_stop_requested", signal=name)
            hardstop.arm(reactor.settings.drain_s + HARD_STOP_MARGIN_S, reason=name)
            reactor.stop()


def _load_handlers(settings: Settings) -> Registry:
    """The registry, each import bounded by ``handler_import_timeout_s`` (exit 2 past it)."""
    from reactor.import_guard import ImportGuard
    from reactor.registry import load_registry

    guard = ImportGuard(settings.handler_import_timeout_s, exit_code=EXIT_CONFIG)
    return load_registry(modules=settings.handler_module_list, guard=guard)


def cmd_handlers(ns: argparse.Namespace) -> int:
    settings = settings_of(ns)
    rows = [("COMMAND", "RUNS", "SOURCE", "VERSION")]
    rows += [(h.name, h.runs.value, h.source, h.version or "-") for h in _load_handlers(settings)]
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    for row in rows:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
    return 0


def cmd_dev_mongo(ns: argparse.Namespace) -> int:
    from reactor.testing import MongoDouble

    stop_signals = {signal.SIGINT, signal.SIGTERM}
    signal.pthread_sigmask(signal.SIG_BLOCK, stop_signals)  # the server thread inherits this
    double = MongoDouble(ns.host, ns.port, server_version=ns.server_version).start()
    print(f"mongo-reactor test double listening; REACTOR_MONGO_URI={double.uri}", flush=True)
    try:
        signal.sigwait(stop_signals)
    finally:
        double.stop()
    return 0


def cmd_demo(ns: argparse.Namespace) -> int:
    from reactor.demo import run_demo

    return run_demo(samples=not ns.tour)


if __name__ == "__main__":
    sys.exit(main())
