"""Retry policy: which failures run again, after how long, and how many times.

``@handler(retry=RetryPolicy(max_attempts=5, backoff_s=2))``. The delay before attempt ``n + 1``
is ``min(max_backoff_s, backoff_s * 2 ** (n - 1))``, shortened by up to ``jitter`` of itself at
random so that many jobs failing together do not come back together. ``Retry(delay_s=...)``
raised by a handler asks for exactly that delay instead.

What retries by default:

- ``Retry`` (a request, not a failure), while attempts remain;
- a crashed worker process (``WorkerCrashed``), and a MongoDB error the handler let through that
  is transient (unreachable, failing over, timed out);
- a ``JobError`` raised with ``retryable=True``, and any exception type in ``retry_on``;
- a timeout (``JobTimeout``) only with ``retry_timeouts=True``: a hung input usually hangs again.

Never: bad input (``InputError``, ``InvalidArguments``, ``InvalidJob``, ``UnknownCommand``), a
result that cannot be stored, a poison job, or an exception of the handler's own (a bug in it
usually repeats; list the type in ``retry_on`` if not).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from pymongo.errors import PyMongoError

from reactor.driver import is_transient
from reactor.errors import HandlerFailed, JobError, JobTimeout, Retry, WorkerCrashed

# MongoDB errors a handler may let through that say "try again later", by qualified name (a
# process handler's exception arrives as a name only).
TRANSIENT_DRIVER_ERRORS = frozenset(
    f"pymongo.errors.{name}"
    for name in (
        "AutoReconnect",
        "ConnectionFailure",
        "NetworkTimeout",
        "ServerSelectionTimeoutError",
        "ExecutionTimeout",
        "WTimeoutError",
        "WaitQueueTimeoutError",
    )
)


@dataclass(frozen=True)
class RetryPolicy:
    """How a handler's failed attempts are retried, as declared (``None`` fields: the reactor's
    settings, filled in by :meth:`resolve`)."""

    max_attempts: int | None = None
    backoff_s: float | None = None
    max_backoff_s: float | None = None
    jitter: float = 0.2
    retry_timeouts: bool = False
    retry_on: tuple[type[BaseException] | str, ...] = ()

    def __post_init__(self) -> None:
        if self.max_attempts is not None and self.max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, got {self.max_attempts}")
        for name in ("backoff_s", "max_backoff_s"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ValueError(f"{name} must not be negative, got {value}")
        if not 0 <= self.jitter <= 1:
            raise ValueError(f"jitter must be between 0 and 1, got {self.jitter}")

    def resolve(self, defaults: RetryRules) -> RetryRules:
        """This policy with its unset fields taken from ``defaults`` (the reactor's settings)."""
        return RetryRules(
            max_attempts=_given(self.max_attempts, defaults.max_attempts),
            backoff_s=_given(self.backoff_s, defaults.backoff_s),
            max_backoff_s=_given(self.max_backoff_s, defaults.max_backoff_s),
            jitter=self.jitter,
            retry_timeouts=self.retry_timeouts,
            retry_on=self.retry_on,
        )


@dataclass(frozen=True)
class RetryRules:
    """A handler's retry policy with every field decided, resolved once when the registry is
    built (:meth:`RetryPolicy.resolve`)."""

    max_attempts: int
    backoff_s: float
    max_backoff_s: float
    jitter: float = 0.2
    retry_timeouts: bool = False
    retry_on: tuple[type[BaseException] | str, ...] = ()

    def backoff(self, attempt: int, rand: Callable[[], float] = random.random) -> float:
        """The pause after failed attempt ``attempt`` (1-based)."""
        delay: float = min(self.max_backoff_s, self.backoff_s * 2.0 ** max(0, attempt - 1))
        return delay * (1 - self.jitter * rand())


T = TypeVar("T")


def _given(value: T | None, default: T) -> T:
    return default if value is None else value


def retry_delay(
    exc: BaseException,
    attempt: int,
    policy: RetryRules,
    rand: Callable[[], float] = random.random,
) -> float | None:
    """Seconds until the next attempt, or ``None`` when this failure is final (pure)."""
    if attempt >= policy.max_attempts:
        return None
    if isinstance(exc, Retry):
        return float(exc.delay_s) if exc.delay_s > 0 else policy.backoff(attempt, rand)
    return policy.backoff(attempt, rand) if retries(exc, policy) else None


def retries(exc: BaseException, policy: RetryRules) -> bool:
    """Whether ``exc`` is the kind of failure ``policy`` runs again."""
    if isinstance(exc, Retry | WorkerCrashed):
        return True
    if isinstance(exc, JobTimeout):
        return policy.retry_timeouts
    if isinstance(exc, PyMongoError) and is_transient(exc):
        return True
    name = exc.type_name if isinstance(exc, HandlerFailed) else _qualified(type(exc))
    if name in TRANSIENT_DRIVER_ERRORS or _listed(exc, name, policy.retry_on):
        return True
    return isinstance(exc, JobError) and exc.retryable


def _listed(exc: BaseException, name: str, retry_on: tuple[type[BaseException] | str, ...]) -> bool:
    for entry in retry_on:
        if isinstance(entry, str):
            if name == entry or name.rsplit(".", 1)[-1] == entry:
                return True
        elif isinstance(exc, entry):
            return True
    return False


def _qualified(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"
