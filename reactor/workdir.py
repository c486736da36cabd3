"""Each job's working directory under ``jobs_root``, and the rule that paths stay inside it."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from reactor.errors import PathEscape

_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def dir_name(job_key: str) -> str:
    """The directory name for a job: its key when filesystem-safe, else a stable digest of it."""
    if _SAFE_NAME.match(job_key) and ".." not in job_key:
        return job_key
    return "job-" + hashlib.sha256(job_key.encode()).hexdigest()[:32]


def job_dir(jobs_root: Path, job_key: str) -> Path:
    """``<jobs_root>/<job>`` for a job key (not created)."""
    return jobs_root / dir_name(job_key)


def prepare(jobs_root: Path, job_key: str) -> Path:
    """Create the job's directory (and the root) if missing and return its resolved path."""
    path = job_dir(jobs_root, job_key)
    path.mkdir(parents=True, exist_ok=True)
    return path.resolve()


def resolve_inside(workdir: Path, candidate: Path) -> Path:
    """Resolve ``candidate`` against ``workdir``; raise :class:`PathEscape` if it leaves it."""
    root = workdir.resolve()
    resolved = (root / candidate).resolve()
    if resolved != root and root not in resolved.parents:
        raise PathEscape(f"path {str(candidate)!r} escapes the job directory {str(root)!r}")
    return resolved
