"""Heavy libraries imported when first used, not when the handler module is.

The reactor imports every handler module to read its handlers' signatures, but runs the OpenCV
and OCR handlers in its pool workers. Importing NumPy and OpenCV at module level cost the reactor
process about 30 MB of resident memory it never used; :func:`lazy_module` defers that to the first
attribute read, which only a worker running such a handler makes.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any


class _LazyModule:
    def __init__(self, name: str) -> None:
        self._name = name
        self._module: ModuleType | None = None

    def __getattr__(self, attribute: str) -> Any:
        if self._module is None:
            self._module = importlib.import_module(self._name)
        return getattr(self._module, attribute)


def lazy_module(name: str) -> Any:
    """``name``'s module, imported on its first attribute read."""
    return _LazyModule(name)
