"""Entry points of the ``reactor.handlers`` group turned into handlers, checked at startup.

The entry-point name is the job's ``command``. Two entry points with one name stop startup with
a message naming both. Each handler gets an argument model built from its signature and type
hints (pydantic), so a job's ``args`` are validated before the handler runs.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import sys
import typing
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from types import ModuleType
from typing import Any

import pydantic

from reactor.errors import DuplicateHandler, InvalidArguments, RegistryError
from reactor.handler import (
    CONTEXT_PARAM,
    OPTIONS_ATTR,
    HandlerOptions,
    Runs,
    default_runs,
    options_of,
)
from reactor.workdir import resolve_inside

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
    args_model: type[pydantic.BaseModel]
    path_fields: frozenset[str]
    wants_context: bool

    def bind_args(self, args: Mapping[str, Any], workdir: Path) -> dict[str, Any]:
        """Validate ``args`` against the signature; resolve path arguments inside ``workdir``."""
        try:
            model = self.args_model.model_validate(dict(args))
        except pydantic.ValidationError as exc:
            raise InvalidArguments(f"invalid args for {self.name!r}: {_explain(exc)}") from None
        values = {key: getattr(model, key) for key in model.model_fields_set}
        values.update(_extra_of(model))
        for key in self.path_fields & values.keys():
            if values[key] is not None:
                values[key] = resolve_inside(workdir, values[key])
        return values


class Registry:
    """The handlers by command name."""

    def __init__(self, handlers: Iterable[Handler]) -> None:
        self._by_name = {h.name: h for h in handlers}

    def get(self, name: str) -> Handler | None:
        return self._by_name.get(name)

    def names(self) -> list[str]:
        return sorted(self._by_name)

    def __iter__(self) -> typing.Iterator[Handler]:
        return iter(self._by_name[name] for name in self.names())

    def __len__(self) -> int:
        return len(self._by_name)


def load_registry(group: str = GROUP, modules: Sequence[str] = ()) -> Registry:
    """Load every entry point of ``group`` and every public function of ``modules``.

    Fails on a command name declared twice (naming both places) or on one that cannot load.
    """
    found = _unique(entry_points(group=group))
    seen: dict[str, EntryPoint] = {}
    for ep in found:
        if ep.name in seen:
            raise DuplicateHandler(
                f"command {ep.name!r} is declared twice: {_describe(seen[ep.name])} and "
                f"{_describe(ep)}; uninstall one or rename its entry point"
            )
        seen[ep.name] = ep
    handlers = {name: _load(ep) for name, ep in seen.items()}
    for spec in modules:
        for handler in module_handlers(spec):
            if handler.name in handlers:
                raise DuplicateHandler(
                    f"command {handler.name!r} is declared twice: {handlers[handler.name].source} "
                    f"and {handler.source} (REACTOR_HANDLER_MODULES); rename one of them"
                )
            handlers[handler.name] = handler
    return Registry(handlers.values())


def module_handlers(spec: str) -> list[Handler]:
    """The handlers of one handler module: a module name or a ``.py`` file path.

    Every public top-level function *defined* in the module (not imported into it) becomes a
    command of its own name. A plain function runs in the CPU pool unless ``@handler`` says
    otherwise; an ``async def`` runs on the loop.
    """
    module = _import_module(spec)
    found = []
    for name, fn in vars(module).items():
        if name.startswith("_") or not inspect.isfunction(fn):
            continue
        if fn.__module__ != module.__name__:
            continue
        default = Runs.LOOP if inspect.iscoroutinefunction(fn) else Runs.PROCESS
        if hasattr(fn, OPTIONS_ATTR):
            default = default_runs(fn)
        try:
            found.append(build_handler(name, fn, runs_default=default))
        except (TypeError, NameError, pydantic.PydanticUserError) as exc:
            raise RegistryError(
                f"handler {name!r} ({module.__name__}:{name}) has an unusable signature: {exc}"
            ) from exc
    return found


def _import_module(spec: str) -> ModuleType:
    """Import a module by name, or a ``.py`` file by path (its folder joins ``sys.path``, so the
    CPU pool's worker processes import it under the same name)."""
    try:
        if not spec.endswith(".py"):
            return importlib.import_module(spec)
        path = Path(spec).resolve()
        if not path.is_file():
            raise RegistryError(f"handler module {spec!r} (REACTOR_HANDLER_MODULES) is not a file")
        folder = str(path.parent)
        if folder not in sys.path:
            sys.path.insert(0, folder)
        return importlib.import_module(path.stem)
    except RegistryError:
        raise
    except Exception as exc:
        raise RegistryError(
            f"cannot import handler module {spec!r} (REACTOR_HANDLER_MODULES): {exc!r}"
        ) from exc


def build_handler(
    name: str,
    fn: Callable[..., Any],
    *,
    source: str | None = None,
    distribution: str | None = None,
    dist_version: str | None = None,
    runs_default: Runs | None = None,
) -> Handler:
    """Make a :class:`Handler` from a function (also used by tests and the testing package)."""
    options = options_of(fn)
    model, path_fields, wants_context = _args_model(name, fn)
    return Handler(
        name=name,
        fn=fn,
        runs=options.runs or runs_default or default_runs(fn),
        options=options,
        source=source or f"{fn.__module__}:{fn.__qualname__}",
        distribution=distribution,
        version=options.version or dist_version,
        args_model=model,
        path_fields=path_fields,
        wants_context=wants_context,
    )


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


def _args_model(
    name: str, fn: Callable[..., Any]
) -> tuple[type[pydantic.BaseModel], frozenset[str], bool]:
    signature = inspect.signature(fn)
    hints = typing.get_type_hints(fn)
    fields: dict[str, Any] = {}
    paths: set[str] = set()
    wants_context = False
    allow_extra = False
    for param in signature.parameters.values():
        if param.name == CONTEXT_PARAM:
            wants_context = True
        elif param.kind is param.VAR_KEYWORD:
            allow_extra = True
        elif param.kind in (param.VAR_POSITIONAL, param.POSITIONAL_ONLY):
            raise TypeError(f"parameter {param.name!r} cannot be filled from named args")
        else:
            hint = hints.get(param.name, Any)
            default = ... if param.default is param.empty else param.default
            fields[param.name] = (hint, default)
            if _is_path(hint):
                paths.add(param.name)
    config = pydantic.ConfigDict(
        extra="allow" if allow_extra else "forbid", arbitrary_types_allowed=True
    )
    model = pydantic.create_model(f"{name}_args", __config__=config, **fields)
    return model, frozenset(paths), wants_context


def _is_path(hint: Any) -> bool:
    if hint is Path:
        return True
    return any(arg is Path for arg in typing.get_args(hint))


def _extra_of(model: pydantic.BaseModel) -> dict[str, Any]:
    return dict(model.model_extra or {})


def _explain(exc: pydantic.ValidationError) -> str:
    parts = []
    for error in exc.errors(include_url=False):
        where = ".".join(str(p) for p in error["loc"]) or "args"
        message = "unexpected argument" if error["type"] == "extra_forbidden" else error["msg"]
        parts.append(f"{where}: {message}")
    return "; ".join(parts)
