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

**Workflows.** A workflow has its own directory, ``<jobs_root>/_workflows/<dir_name(id)>`` (the
leading ``_`` keeps it apart from every job's directory), and each of its step jobs runs in a
directory inside it: ``<step>`` for a one-job step, ``<step>/<index>`` for the jobs of a
``for_each`` step. A step job's path arguments resolve against the *workflow* directory and may
name anything in it -- files put there with the workflow, its own directory, the directories of
the steps upstream of it -- except the directories of the steps that are not upstream of it
(they may still be running: a step never reads an input that may be incomplete).
:class:`Place` holds that rule.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import Any

from reactor.errors import PathEscape
from reactor.workflows.model import Link

_SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
HASHED_PREFIX = "_job-"  # "_" cannot start a safe name: hashed and safe names never meet
WORKFLOWS_DIR = "_workflows"  # the parent of every workflow's directory (never a job's name)


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


def workflow_dir(jobs_root: Path, workflow_id: str) -> Path:
    """``<jobs_root>/_workflows/<workflow>``: a workflow's files and its steps' directories."""
    return jobs_root / WORKFLOWS_DIR / dir_name(workflow_id)


@dataclass(frozen=True)
class Place:
    """Where a job runs (``directory``), what its path arguments resolve against (``root``), and
    the directories inside the root they may not enter (``closed``)."""

    directory: Path
    root: Path
    closed: tuple[Path, ...] = ()

    def resolve(self, candidate: PurePath | str) -> Path:
        """``candidate`` resolved against the root; :class:`PathEscape` if it leaves the root or
        enters a closed directory."""
        resolved = resolve_inside(self.root, candidate)
        for closed in self.closed:
            if resolved == closed or closed in resolved.parents:
                raise PathEscape(
                    f"path {str(candidate)!r} is in the directory of step {closed.name!r}, "
                    "which is not upstream of this step"
                )
        return resolved


def place(jobs_root: Path, job_key: str, workflow: Any = None) -> Place:
    """A job's place: its own directory for a plain job; inside its workflow's directory for a
    workflow's step job (``workflow``: the job's ``workflow`` link)."""
    link = Link.from_doc(workflow)
    if link is None:
        own = job_dir(jobs_root, job_key)
        return Place(own, own)
    root = workflow_dir(jobs_root, link.workflow_id)
    step = root / link.step
    own = step if link.index is None else step / str(link.index)
    return Place(own, root, tuple(root / name for name in link.closed))


def prepare_place(jobs_root: Path, job_key: str, workflow: Any = None) -> Place:
    """:func:`place`, with the job's directory created and every path resolved."""
    found = place(jobs_root, job_key, workflow)
    found.directory.mkdir(parents=True, exist_ok=True)
    return Place(
        found.directory.resolve(), found.root.resolve(), tuple(c.resolve() for c in found.closed)
    )


def resolve_inside(workdir: Path, candidate: PurePath | str) -> Path:
    """Resolve ``candidate`` against ``workdir``; raise :class:`PathEscape` if it leaves it."""
    root = workdir.resolve()
    resolved = (root / candidate).resolve()
    if resolved != root and root not in resolved.parents:
        raise PathEscape(f"path {str(candidate)!r} escapes the job directory {str(root)!r}")
    return resolved


def resolve_paths(workdir: Path | Place, value: Any) -> Any:
    """``value`` with every path in it resolved inside ``workdir`` (a directory, or a job's
    :class:`Place`), containers element by element.

    Paths may sit in lists, tuples, sets and mappings (keys and values), nested to any depth;
    other values pass through unchanged. Any path that leaves ``workdir`` raises
    :class:`PathEscape`.
    """
    if isinstance(value, PurePath):
        return (
            workdir.resolve(value) if isinstance(workdir, Place) else resolve_inside(workdir, value)
        )
    if isinstance(value, Mapping):
        return {resolve_paths(workdir, k): resolve_paths(workdir, v) for k, v in value.items()}
    if isinstance(value, tuple) and hasattr(value, "_fields"):  # a NamedTuple
        return type(value)(*(resolve_paths(workdir, item) for item in value))
    if isinstance(value, list | tuple | set | frozenset):
        return type(value)(resolve_paths(workdir, item) for item in value)
    return value
