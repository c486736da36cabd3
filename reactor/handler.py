"""The public API for writing a handler: how it runs, its timeout, its concurrency, its context.

A handler is any function registered under the ``reactor.handlers`` entry-point group; the
entry-point name is the job's ``command``. Without the decorator a coroutine function runs on the
event loop and a plain function runs in a thread. ``@handler(runs="process")`` sends it to the CPU
pool; it must then be a top-level function of an importable module so that it can be pickled.

A parameter named ``ctx`` receives the :class:`JobContext`; every other parameter is filled from the
job's ``args`` after validation against its type hints. Parameters annotated ``pathlib.Path``
resolve relative to the job's working directory and may not leave it.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, TypeVar, overload

import structlog

from reactor.retry import RetryPolicy

F = TypeVar("F", bound=Callable[..., Any])

OPTIONS_ATTR = "__reactor_handler__"
CONTEXT_PARAM = "ctx"


class Runs(StrEnum):
    """Where a handler's code executes."""

    LOOP = "loop"  # a coroutine on the reactor's event loop: I/O-bound work
    THREAD = "thread"  # a blocking call in a worker thread: blocking I/O, short native calls
    PROCESS = "process"  # a CPU pool process that can be killed: OCR, OpenCV, anything heavy


@dataclass(frozen=True)
class HandlerOptions:
    """What a handler declares about itself; ``None`` means the reactor's default."""

    runs: Runs | None = None
    timeout_s: float | None = None
    max_concurrency: int | None = None
    max_attempts: int | None = None
    version: str | None = None
    retry: RetryPolicy | None = None

    @property
    def retry_policy(self) -> RetryPolicy:
        """The declared policy, with ``max_attempts`` folded in (``None`` fields: settings)."""
        policy = self.retry or RetryPolicy()
        if self.max_attempts is not None and policy.max_attempts is None:
            return RetryPolicy(**{**policy.__dict__, "max_attempts": self.max_attempts})
        return policy


@dataclass(frozen=True)
class JobContext:
    """What a handler knows about the job it runs; picklable, so CPU handlers get it too."""

    job_id: str
    command: str
    attempt: int
    workdir: Path
    settings: dict[str, Any] = field(default_factory=dict)  # Settings.handler_options()
    log_fields: dict[str, Any] = field(default_factory=dict)
    run: int = 1  # which run of the job (a re-run starts the next)
    fence: int = 0  # this claim's count (a client's replace of the document starts it again)
    claim_id: str = ""  # this claim's unique id: two executions of a job never share one, so it
    # serves as an idempotency key for the handler's own side effects

    @property
    def log(self) -> Any:
        """A structlog logger bound to the job's ``job_id``, ``command`` and ``attempt``."""
        return structlog.get_logger("reactor.handler").bind(
            job_id=self.job_id, command=self.command, attempt=self.attempt, **self.log_fields
        )

    def progress(self, fraction: float, message: str | None = None) -> None:
        """Report how far the job is (``0.0`` to ``1.0``), from any kind of handler.

        Stored on the job as ``progress: {fraction, message, updated_at}``, at most one write
        per second per job (the latest report wins).
        """
        from reactor import progress

        progress.report(self.job_id, fraction, message)

    def path(self, name: str | Path) -> Path:
        """A path inside the job directory (``name`` may not leave it)."""
        from reactor.workdir import resolve_inside

        return resolve_inside(self.workdir, Path(name))


@overload
def handler(fn: F, /) -> F: ...


@overload
def handler(
    *,
    runs: Runs | str | None = None,
    timeout_s: float | None = None,
    max_concurrency: int | None = None,
    max_attempts: int | None = None,
    version: str | None = None,
    retry: RetryPolicy | None = None,
) -> Callable[[F], F]: ...


def handler(
    fn: F | None = None,
    /,
    *,
    runs: Runs | str | None = None,
    timeout_s: float | None = None,
    max_concurrency: int | None = None,
    max_attempts: int | None = None,
    version: str | None = None,
    retry: RetryPolicy | None = None,
) -> F | Callable[[F], F]:
    """Declare how a handler runs; usable bare (``@handler``) or with options."""

    def mark(func: F) -> F:
        options = HandlerOptions(
            runs=Runs(runs) if runs is not None else None,
            timeout_s=timeout_s,
            max_concurrency=max_concurrency,
            max_attempts=max_attempts,
            version=version,
            retry=retry,
        )
        _check_options(func, options)
        setattr(func, OPTIONS_ATTR, options)
        return func

    return mark(fn) if fn is not None else mark


def options_of(func: Callable[..., Any]) -> HandlerOptions:
    """The options declared with :func:`handler`, or the defaults."""
    found = getattr(func, OPTIONS_ATTR, None)
    return found if isinstance(found, HandlerOptions) else HandlerOptions()


def default_runs(func: Callable[..., Any]) -> Runs:
    """Coroutine functions run on the loop, plain functions in a thread."""
    return Runs.LOOP if inspect.iscoroutinefunction(func) else Runs.THREAD


def _check_options(func: Callable[..., Any], options: HandlerOptions) -> None:
    is_async = inspect.iscoroutinefunction(func)
    if options.runs is Runs.LOOP and not is_async:
        raise TypeError(f"{func.__qualname__}: runs='loop' needs an async def function")
    if options.runs in (Runs.THREAD, Runs.PROCESS) and is_async:
        raise TypeError(f"{func.__qualname__}: runs='{options.runs}' needs a plain def function")
    if options.runs is Runs.PROCESS and "<locals>" in func.__qualname__:
        raise TypeError(f"{func.__qualname__}: runs='process' needs a top-level function")
    for name, value in (
        ("timeout_s", options.timeout_s),
        ("max_concurrency", options.max_concurrency),
        ("max_attempts", options.max_attempts),
    ):
        if value is not None and value <= 0:
            raise ValueError(f"{func.__qualname__}: {name} must be positive, got {value}")
