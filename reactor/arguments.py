"""A handler's arguments: a pydantic model built from its signature, and binding a job's ``args``.

Every parameter but ``ctx`` becomes a field with its type hint and default; ``**kwargs`` allows
extra arguments; positional-only and ``*args`` parameters cannot be filled from a mapping and are
refused when the handler is loaded. A parameter whose hint mentions ``pathlib.Path`` anywhere
(``Path``, ``Path | None``, ``list[Path]``, ``tuple[Path, ...]``, ``dict[str, Path]``, nested) is
resolved inside the job directory, element by element, whether the job passed it or the handler's
default supplied it. For a step of a workflow, a path the job passed resolves in the workflow's
directory (``reactor.workdir.Place``); a default still in the job's own directory.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import Any

import pydantic
import pydantic.json_schema

from reactor.errors import InvalidArguments
from reactor.handler import CONTEXT_PARAM
from reactor.workdir import Place, resolve_paths

_ADAPTER_CONFIG = pydantic.ConfigDict(arbitrary_types_allowed=True)


@dataclass(frozen=True)
class Arguments:
    """How one handler's arguments are checked and bound."""

    model: type[pydantic.BaseModel]
    path_fields: frozenset[str]
    path_defaults: Mapping[str, Any]  # validated defaults of path fields (``None`` left out)
    wants_context: bool

    @classmethod
    def of(cls, name: str, fn: Callable[..., Any]) -> Arguments:
        """Build the argument model of ``fn``; ``TypeError`` for a signature args cannot fill."""
        signature = inspect.signature(fn)
        hints = typing.get_type_hints(fn)
        fields: dict[str, Any] = {}
        paths: set[str] = set()
        wants_context = allow_extra = False
        for param in signature.parameters.values():
            if param.name == CONTEXT_PARAM:
                wants_context = True
            elif param.kind is param.VAR_KEYWORD:
                allow_extra = True
            elif param.kind in (param.VAR_POSITIONAL, param.POSITIONAL_ONLY):
                raise TypeError(f"parameter {param.name!r} cannot be filled from named args")
            else:
                hint = hints.get(param.name, Any)
                fields[param.name] = (hint, ... if param.default is param.empty else param.default)
                if mentions_path(hint):
                    paths.add(param.name)
        config = pydantic.ConfigDict(
            extra="allow" if allow_extra else "forbid", arbitrary_types_allowed=True
        )
        model = pydantic.create_model(f"{name}_args", __config__=config, **fields)
        return cls(model, frozenset(paths), _path_defaults(model, paths), wants_context)

    def check(self, name: str, args: Mapping[str, Any]) -> None:
        """Validate ``args`` without binding them (:class:`InvalidArguments` when they fail)."""
        try:
            self.model.model_validate(dict(args))
        except pydantic.ValidationError as exc:
            raise InvalidArguments(f"invalid args for {name!r}: {explain(exc)}") from None

    def json_schema(self) -> dict[str, Any]:
        """The arguments as a JSON Schema (types, defaults, required); a type JSON Schema cannot
        express is described as any value, with its Python name."""
        return self.model.model_json_schema(schema_generator=_LenientSchema)

    def bind(self, name: str, args: Mapping[str, Any], workdir: Path | Place) -> dict[str, Any]:
        """Validate ``args``; resolve path arguments (given or defaulted) inside ``workdir`` (a
        directory, or a job's :class:`~reactor.workdir.Place`)."""
        try:
            model = self.model.model_validate(dict(args))
        except pydantic.ValidationError as exc:
            raise InvalidArguments(f"invalid args for {name!r}: {explain(exc)}") from None
        values = {key: getattr(model, key) for key in model.model_fields_set}
        values.update(model.model_extra or {})
        own = workdir.directory if isinstance(workdir, Place) else workdir
        for key in self.path_fields:
            if key not in values and key in self.path_defaults:
                # The handler's own default names its own file: in its own directory.
                values[key] = resolve_paths(own, self.path_defaults[key])
            elif values.get(key) is not None:
                values[key] = resolve_paths(workdir, values[key])
        return values


class _LenientSchema(pydantic.json_schema.GenerateJsonSchema):
    """JSON Schema generation that describes an arbitrary Python type instead of failing."""

    def handle_invalid_for_json_schema(
        self, schema: Any, error_info: str
    ) -> pydantic.json_schema.JsonSchemaValue:
        return {"description": f"a Python value ({error_info})"}


def mentions_path(hint: Any) -> bool:
    """Whether a type hint is, or contains anywhere, ``pathlib.Path`` (or another path type)."""
    if isinstance(hint, type) and issubclass(hint, PurePath):
        return True
    return any(mentions_path(arg) for arg in typing.get_args(hint))


def _path_defaults(model: type[pydantic.BaseModel], paths: set[str]) -> dict[str, Any]:
    """The defaults of path fields, validated like passed values (``"out.png"`` becomes a Path)."""
    found: dict[str, Any] = {}
    for key in paths:
        info = model.model_fields[key]
        if info.is_required() or info.default is None:
            continue
        try:
            adapter: pydantic.TypeAdapter[Any] = pydantic.TypeAdapter(
                info.annotation or Any, config=_ADAPTER_CONFIG
            )
            found[key] = adapter.validate_python(info.default)
        except pydantic.ValidationError as exc:
            raise TypeError(f"default of {key!r} does not match its type: {explain(exc)}") from None
    return found


def explain(exc: pydantic.ValidationError) -> str:
    """A validation error as ``where: what`` parts joined by ``;``."""
    parts = []
    for error in exc.errors(include_url=False):
        where = ".".join(str(p) for p in error["loc"]) or "args"
        message = "unexpected argument" if error["type"] == "extra_forbidden" else error["msg"]
        parts.append(f"{where}: {message}")
    return "; ".join(parts)
