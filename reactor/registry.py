"""Handlers by command name, checked at startup: entry points and plain handler modules.

Entry points of the ``reactor.handlers`` group: the entry-point name is the job's ``command``.
Handler modules (``REACTOR_HANDLER_MODULES``, module names or ``.py`` paths): every public
top-level function is a command of its own name. A command declared twice, by two entry points, a
module and an entry point, or two modules, stops startup with a message naming both. Each handler
gets an argument model built from its signature and type hints (:mod:`reactor.arguments`), so a
job's ``args`` are validated before the handler runs.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, replace
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from typing import Any

import pydantic

from reactor.arguments import Arguments
from reactor.config import Settings
from reactor.errors import DuplicateHandler, RegistryError
from reactor.handler import OPTIONS_ATTR, HandlerOptions, Runs, default_runs, options_of
from reactor.handler_modules import import_handler_module, public_functions, reachable_by_name
from reactor.import_guard import ImportGuard
from reactor.retry import RetryRules
from reactor.workdir import Place

GROUP = "reactor.handlers"


@dataclass(frozen=True)
class Handler:
    """A loaded handler: its function, how it runs, and how its arguments are checked."""

    name: str
    fn: Callable[..., Any]
    runs: Runs
    options: HandlerOptions
    source: str  # "module:attr"
    distribution: str | None
    version: str | None
    arguments: Arguments
    timeout_s: float  # the declared timeout, else the reactor's default
    retry: RetryRules  # the declared policy, completed by the reactor's settings

    @property
    def wants_context(self) -> bool:
        """Whether the handler takes a ``ctx`` parameter."""
        return self.arguments.wants_context

    @property
    def path_fields(self) -> frozenset[str]:
        """The parameters resolved inside the job directory."""
        return self.arguments.path_fields

    def bind_args(self, args: Mapping[str, Any], workdir: Path | Place) -> dict[str, Any]:
        """Validate ``args`` against the signature; resolve path arguments inside ``workdir``
        (a directory, or a job's :class:`~reactor.workdir.Place`).

        Paths given by the job and path defaults of the signature are both resolved, and so is
        every path inside a container argument (``list[Path]``, ``dict[str, Path]``, ...).
        """
        return self.arguments.bind(self.name, args, workdir)


@dataclass(frozen=True)
class HandlerDefaults:
    """What a handler gets where it declares nothing: the reactor's settings."""

    timeout_s: float
    retry: RetryRules

    @classmethod
    def of(cls, settings: Settings) -> HandlerDefaults:
        return cls(
            timeout_s=settings.job_timeout_s,
            retry=RetryRules(
                max_attempts=settings.max_attempts,
                backoff_s=settings.retry_backoff_s,
                max_backoff_s=settings.retry_max_backoff_s,
            ),
        )

    @classmethod
    def standard(cls) -> HandlerDefaults:
        """The defaults of an unconfigured reactor (each setting's default)."""
        fields = Settings.model_fields
        return cls(
            timeout_s=float(fields["job_timeout_s"].default),
            retry=RetryRules(
                max_attempts=int(fields["max_attempts"].default),
                backoff_s=float(fields["retry_backoff_s"].default),
                max_backoff_s=float(fields["retry_max_backoff_s"].default),
            ),
        )


def decide(options: HandlerOptions, defaults: HandlerDefaults) -> tuple[float, RetryRules]:
    """A handler's timeout and retry policy: what it declares, else ``defaults``. The one place
    a handler's options meet the settings."""
    return options.timeout_s or defaults.timeout_s, options.retry_policy.resolve(defaults.retry)


def resolve(handler: Handler, defaults: HandlerDefaults) -> Handler:
    """The handler with its options decided against ``defaults``."""
    timeout_s, retry = decide(handler.options, defaults)
    return replace(handler, timeout_s=timeout_s, retry=retry)


class Registry:
    """The handlers by command name."""

    def __init__(self, handlers: Iterable[Handler]) -> None:
        self._by_name = {h.name: h for h in handlers}

    def resolved(self, defaults: HandlerDefaults) -> Registry:
        """The same handlers with options resolved against ``defaults`` (the settings)."""
        return Registry(resolve(h, defaults) for h in self._by_name.values())

    def get(self, name: str) -> Handler | None:
        return self._by_name.get(name)

    def names(self) -> list[str]:
        return sorted(self._by_name)

    def has(self, name: str) -> bool:
        """Whether ``name`` is a command of this registry."""
        return name in self._by_name

    def __iter__(self) -> typing.Iterator[Handler]:
        return iter(self._by_name[name] for name in self.names())

    def __len__(self) -> int:
        return len(self._by_name)


def load_registry(
    group: str = GROUP,
    modules: Sequence[str] = (),
    defaults: HandlerDefaults | None = None,
    *,
    guard: ImportGuard | None = None,
) -> Registry:
    """Load every entry point of ``group`` and every public function of ``modules``.

    ``modules`` are module names or ``.py`` paths (``REACTOR_HANDLER_MODULES``). Fails with a
    :class:`RegistryError` on a command name declared twice (naming both places) and on anything
    that cannot load: a missing file, a module that does not import, an unusable signature.
    With ``guard``, an import that does not finish in time ends the process, naming it.
    """
    handlers: dict[str, Handler] = {}
    where: dict[str, str] = {}  # command -> where it was declared, for clash messages
    for ep in _unique_names(_unique(entry_points(group=group))):
        with guard.watching(f"entry point {_describe(ep)}") if guard else nullcontext():
            handlers[ep.name] = _load(ep)
        where[ep.name] = f"the entry point {_describe(ep)}"
    for spec in dict.fromkeys(modules):
        for found in module_handlers(spec, guard):
            place = f"{found.source} (handler module {spec})"
            if found.name in handlers:
                raise DuplicateHandler(
                    f"command {found.name!r} is declared twice: {where[found.name]} and {place}; "
                    "rename one of them (a function whose name starts with _ is not a command)"
                )
            handlers[found.name] = found
            where[found.name] = place
    return Registry(handlers.values()).resolved(defaults or HandlerDefaults.standard())


def module_handlers(spec: str, guard: ImportGuard | None = None) -> list[Handler]:
    """The handlers of one handler module: a module name or a ``.py`` file path.

    Every public top-level function becomes a command of its own name (see
    :mod:`reactor.handler_modules` for which functions count). A plain ``def`` runs in the CPU
    pool, with the job directory as its working directory, unless ``@handler`` says otherwise
    (``@handler`` without ``runs`` keeps its own default, a thread); an ``async def`` runs on the
    loop.
    """
    module = import_handler_module(spec, guard)
    found = []
    for name, fn in public_functions(module).items():
        source = f"{fn.__module__}:{fn.__qualname__}"
        runs = _module_runs(fn)
        if runs is Runs.PROCESS and not reachable_by_name(fn):
            raise RegistryError(
                f"handler {name!r} ({source}, handler module {spec}) cannot run in the CPU pool: "
                "a worker process cannot find it by its name (a lambda or an alias?); define it "
                "with def under its own name, or decorate it with @handler(runs='thread')"
            )
        try:
            found.append(build_handler(name, fn, source=source, runs_default=runs))
        except (TypeError, NameError, pydantic.PydanticUserError) as exc:
            raise RegistryError(
                f"handler {name!r} ({source}, handler module {spec}) has an unusable signature: "
                f"{exc}; give it a leading underscore if it is not a command"
            ) from exc
    return found


def _module_runs(fn: Callable[..., Any]) -> Runs:
    declared = options_of(fn).runs
    if declared is not None:
        return declared
    if inspect.iscoroutinefunction(fn) or hasattr(fn, OPTIONS_ATTR):
        return default_runs(fn)
    return Runs.PROCESS


def build_handler(
    name: str,
    fn: Callable[..., Any],
    *,
    source: str | None = None,
    distribution: str | None = None,
    dist_version: str | None = None,
    runs_default: Runs | None = None,
    defaults: HandlerDefaults | None = None,
) -> Handler:
    """Make a :class:`Handler` from a function (also used by tests and the testing package);
    ``defaults``: the settings' (each setting's default when not given)."""
    options = options_of(fn)
    timeout_s, retry = decide(options, defaults or HandlerDefaults.standard())
    return Handler(
        name=name,
        fn=fn,
        runs=options.runs or runs_default or default_runs(fn),
        options=options,
        source=source or f"{fn.__module__}:{fn.__qualname__}",
        distribution=distribution,
        version=options.version or dist_version,
        arguments=Arguments.of(name, fn),
        timeout_s=timeout_s,
        retry=retry,
    )


def _unique_names(eps: Iterable[EntryPoint]) -> list[EntryPoint]:
    seen: dict[str, EntryPoint] = {}
    for ep in eps:
        if ep.name in seen:
            raise DuplicateHandler(
                f"command {ep.name!r} is declared twice: {_describe(seen[ep.name])} and "
                f"{_describe(ep)}; uninstall one or rename its entry point"
            )
        seen[ep.name] = ep
    return list(seen.values())


def _unique(eps: Iterable[EntryPoint]) -> list[EntryPoint]:
    # The same distribution found twice on sys.path is not a duplicate; two sources are.
    result: dict[tuple[str, str], EntryPoint] = {}
    for ep in eps:
        result.setdefault((ep.name, ep.value), ep)
    return list(result.values())


def _describe(ep: EntryPoint) -> str:
    dist = ep.dist.name if ep.dist is not None else "an unknown distribution"
    return f"{ep.value} (from {dist})"


def _load(ep: EntryPoint) -> Handler:
    try:
        fn = ep.load()
    except Exception as exc:
        raise RegistryError(f"cannot load handler {ep.name!r} from {ep.value}: {exc!r}") from exc
    if not callable(fn):
        raise RegistryError(f"handler {ep.name!r} ({ep.value}) is not callable")
    dist = ep.dist
    try:
        return build_handler(
            ep.name,
            fn,
            source=ep.value,
            distribution=dist.name if dist else None,
            dist_version=dist.version if dist else None,
        )
    except (TypeError, NameError, pydantic.PydanticUserError) as exc:
        raise RegistryError(
            f"handler {ep.name!r} ({ep.value}) has an unusable signature: {exc}"
        ) from exc
