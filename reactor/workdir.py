"""Each job's working directory under ``jobs_root``, and the rule that paths stay inside it.

The directory of a job is named by :func:`dir_name`, and no two job keys share one:

* a **safe** key (``[A-Za-z0-9][A-Za-z0-9._-]{0,127}`` without ``..``) is its own name;
* any other key is named ``_job-`` followed by the 64 hex digits of its SHA-256.

Why this is injective. On safe keys the mapping is the identity, so two different safe keys get
two different names. On unsafe keys it is ``"_job-" + sha256(key)``, so two different unsafe keys
share a name only if SHA-256 collides (no collision is known; finding one takes about 2**128
work). A safe name never starts with ``_`` (its first character is a letter or a digit) and a
hashed name always does, so a safe key and an unsafe key never meet. The earlier scheme named
unsafe keys ``job-<digest>``, which is itself a safe key: ``../tenant-a/report`` and the job id
``job-c78041eeebc9ab185df4274755f539b2`` shared one directory. Safe keys keep the directory
names they always had; only unsafe keys moved, from ``job-...`` to ``_job-...``.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from pathlib import Path, PurePath
from typing import Any

from reactor.errors import PathEscape

_SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
HASHED_PREFIX = "_job-"  # "_" cannot start a safe name: hashed and safe names never meet


def is_safe(job_key: str) -> bool:
    """Whether ``job_key`` is used as its own directory name."""
    return _SAFE_NAME.fullmatch(job_key) is not None and ".." not in job_key


def dir_name(job_key: str) -> str:
    """The directory name for a job: its key when filesystem-safe, else a digest of it."""
    if is_safe(job_key):
        return job_key
    return HASHED_PREFIX + hashlib.sha256(job_key.encode("utf-8", "surrogatepass")).hexdigest()


def job_dir(jobs_root: Path, job_key: str) -> Path:
    """``<jobs_root>/<job>`` for a job key (not created)."""
    return jobs_root / dir_name(job_key)


def prepare(jobs_root: Path, job_key: str) -> Path:
    """Create the job's directory (and the root) if missing and return its resolved path."""
    path = job_dir(jobs_root, job_key)
    path.mkdir(parents=True, exist_ok=True)
    return path.resolve()


def resolve_inside(workdir: Path, candidate: PurePath | str) -> Path:
    """Resolve ``candidate`` against ``workdir``; raise :class:`PathEscape` if it leaves it."""
    root = workdir.resolve()
    resolved = (root / candidate).resolve()
    if resolved != root and root not in resolved.parents:
        raise PathEscape(f"path {str(candidate)!r} escapes the job directory {str(root)!r}")
    return resolved


def resolve_paths(workdir: Path, value: Any) -> Any:
    """``value`` with every path in it resolved inside ``workdir``, containers element by element.

    Paths may sit in lists, tuples, sets and mappings (keys and values), nested to any depth;
    other values pass through unchanged. Any path that leaves ``workdir`` raises
    :class:`PathEscape`.
    """
    if isinstance(value, PurePath):
        return resolve_inside(workdir, value)
    if isinstance(value, Mapping):
        return {resolve_paths(workdir, k): resolve_paths(workdir, v) for k, v in value.items()}
    if isinstance(value, tuple) and hasattr(value, "_fields"):  # a NamedTuple
        return type(value)(*(resolve_paths(workdir, item) for item in value))
    if isinstance(value, list | tuple | set | frozenset):
        return type(value)(resolve_paths(workdir, item) for item in value)
    return value
