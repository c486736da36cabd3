"""The ``PYTHONPATH`` of a child process that imports test helpers from the ``tests`` package.

pytest puts the repository root on ``sys.path`` (``pythonpath`` in pyproject.toml), and the CPU
pool's spawned workers inherit it; a child started with ``subprocess`` gets it from here.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def pythonpath(env: Mapping[str, str]) -> str:
    """The repository root, then whatever ``PYTHONPATH`` ``env`` already had."""
    return os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
