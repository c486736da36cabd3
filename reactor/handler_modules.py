"""Importing a plain handler module (``REACTOR_HANDLER_MODULES``) and choosing its commands.

A spec is a module name (``acme.jobs``) or a ``.py`` file path (``/app/app.py``; a relative path
starts at the working directory). A file is imported under its own stem as the module name, with
its folder put on ``sys.path``: the CPU pool's worker processes inherit ``sys.path`` and import it
the same way when they unpickle a function. Every failure is a :class:`RegistryError` that names
the spec and says what to do: no such file, a syntax error (file and line), a missing dependency,
an exception raised while importing, or a module name already taken by another file.

The commands of a module are its public top-level functions: the names in ``__all__`` when the
module defines it, otherwise every function *defined* in the module (not imported into it) whose
name does not start with ``_``.
"""

from __future__ import annotations

import importlib
import inspect
import sys
import traceback
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path
from types import ModuleType
from typing import Any

from reactor.errors import RegistryError
from reactor.import_guard import ImportGuard

SETTING = "REACTOR_HANDLER_MODULES"


def import_handler_module(spec: str, guard: ImportGuard | None = None) -> ModuleType:
    """Import the module named by ``spec`` (a module name or a ``.py`` path).

    With ``guard``, an import that does not finish in time ends the process, naming the module
    (:mod:`reactor.import_guard`).
    """
    watching = guard.watching(f"handler module {spec!r} ({SETTING})") if guard else nullcontext()
    with watching:
        return _import(spec)


def _import(spec: str) -> ModuleType:
    if spec.endswith(".py"):
        return _import_file(spec)
    try:
        return importlib.import_module(spec)
    except ModuleNotFoundError as exc:
        if exc.name is not None and (spec == exc.name or spec.startswith(exc.name + ".")):
            raise RegistryError(
                f"handler module {spec!r} ({SETTING}): no module of that name is installed; "
                "give a .py file path, or install the package that provides it"
            ) from None
        raise _import_failed(spec, exc) from exc
    except Exception as exc:
        raise _import_failed(spec, exc) from exc


def public_functions(module: ModuleType) -> dict[str, Callable[..., Any]]:
    """The functions of ``module`` that become commands, by command name."""
    exported = getattr(module, "__all__", None)
    found: dict[str, Callable[..., Any]] = {}
    for name, value in vars(module).items():
        if not inspect.isfunction(value):
            continue
        if exported is not None:
            if name in exported:
                found[name] = value
        elif not name.startswith("_") and value.__module__ == module.__name__:
            found[name] = value
    return found


def reachable_by_name(fn: Callable[..., Any]) -> bool:
    """Whether pickle can find ``fn`` again as ``module.qualname`` (a worker process must)."""
    module = sys.modules.get(fn.__module__)
    target: Any = module
    for part in fn.__qualname__.split("."):
        target = getattr(target, part, None)
    return target is fn


def _import_file(spec: str) -> ModuleType:
    path = Path(spec).expanduser().resolve()
    if not path.is_file():
        what = "is a directory" if path.is_dir() else "does not exist"
        raise RegistryError(
            f"handler module {spec!r} ({SETTING}): {path} {what}; a relative path starts at "
            f"the working directory {Path.cwd()}"
        )
    name = path.stem
    taken = sys.modules.get(name)
    if taken is not None and not _is_file_of(taken, path):
        raise _name_taken(spec, name, taken)
    folder = str(path.parent)
    if folder not in sys.path:
        sys.path.insert(0, folder)
    try:
        module = importlib.import_module(name)
    except SyntaxError as exc:
        raise RegistryError(
            f"handler module {spec!r} ({SETTING}) has a syntax error in {exc.filename} line "
            f"{exc.lineno}: {exc.msg}"
        ) from None
    except Exception as exc:
        raise _import_failed(spec, exc) from exc
    if not _is_file_of(module, path):
        raise _name_taken(spec, name, module)
    return module


def _is_file_of(module: ModuleType, path: Path) -> bool:
    file = getattr(module, "__file__", None)
    return file is not None and Path(file).resolve() == path


def _name_taken(spec: str, name: str, module: ModuleType) -> RegistryError:
    other = getattr(module, "__file__", None) or "a built-in module"
    return RegistryError(
        f"handler module {spec!r} ({SETTING}): the module name {name!r} is already taken by "
        f"{other}; rename the file"
    )


def _import_failed(spec: str, exc: BaseException) -> RegistryError:
    if isinstance(exc, ModuleNotFoundError) and exc.name:
        return RegistryError(
            f"handler module {spec!r} ({SETTING}) imports {exc.name!r}, which is not installed; "
            "add it to requirements.txt (or install it)"
        )
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if "<frozen" not in f.filename]
    where = f" at {frames[-1].filename} line {frames[-1].lineno}" if frames else ""
    return RegistryError(
        f"handler module {spec!r} ({SETTING}) raised {type(exc).__name__}: {exc}{where} "
        "while being imported"
    )
