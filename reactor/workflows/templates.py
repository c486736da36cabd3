"""Stored workflow templates: a definition stored once by name, run many times with parameters.

A template, in ``workflow_templates`` (or shipped with the package, like ``ocr_document``)::

    {"name": "ocr_document", "description": "...",
     "params": {"document": {"description": "..."},            # no default: required
                "lang": {"default": "eng", "description": "..."}},
     "steps": [... {"$param": "lang"} anywhere in a step ...], "output": {...}}

Running it (:func:`instantiate`) replaces every ``{"$param": name}`` with the value given, or
the parameter's default, and gives an ordinary workflow document with
``template: {name, params}`` recorded on it; the workflow never changes when the template does.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from importlib import resources
from typing import Any

from reactor.errors import InvalidWorkflow
from reactor.workflows import model
from reactor.workflows.references import substitute

BUILTIN_PACKAGE = "reactor.workflows.builtin"


def instantiate(
    template: Mapping[str, Any], params: Mapping[str, Any], workflow_id: str | None = None
) -> dict[str, Any]:
    """A workflow document from ``template`` with ``params`` (:class:`InvalidWorkflow` for an
    unknown parameter or a required one not given)."""
    name = str(template.get(model.TEMPLATE_NAME, "template"))
    declared = template.get(model.TEMPLATE_PARAMS) or {}
    if not isinstance(declared, Mapping):
        raise InvalidWorkflow(f"template {name!r}: params must be a document")
    unknown = sorted(set(params) - set(declared))
    if unknown:
        raise InvalidWorkflow(
            f"template {name!r} has no parameter {unknown[0]!r} (it has: "
            f"{', '.join(sorted(declared)) or 'none'})"
        )
    values = {key: _value(name, key, spec, params) for key, spec in declared.items()}
    doc: dict[str, Any] = {
        model.WORKFLOW_ID: workflow_id or f"{name}-{uuid.uuid4().hex[:12]}",
        model.STEPS: substitute(template.get(model.STEPS), values),
        model.TEMPLATE: {model.TEMPLATE_NAME: name, model.TEMPLATE_PARAMS: values},
    }
    if template.get(model.OUTPUT) is not None:
        doc[model.OUTPUT] = substitute(template[model.OUTPUT], values)
    return doc


def _value(template: str, key: str, spec: Any, given: Mapping[str, Any]) -> Any:
    if key in given:
        return given[key]
    if isinstance(spec, Mapping) and "default" in spec:
        return spec["default"]
    raise InvalidWorkflow(f"template {template!r} needs a value for parameter {key!r}")


def builtin(name: str) -> dict[str, Any] | None:
    """A template shipped with the package, by name."""
    found = resources.files(BUILTIN_PACKAGE).joinpath(f"{name}.json")
    if not found.is_file():
        return None
    doc = json.loads(found.read_text(encoding="utf-8"))
    return doc if isinstance(doc, dict) else None


def builtin_names() -> list[str]:
    return sorted(
        entry.name.removesuffix(".json")
        for entry in resources.files(BUILTIN_PACKAGE).iterdir()
        if entry.name.endswith(".json")
    )
