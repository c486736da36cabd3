"""MongoDB-shaped write errors: ``{index, code, errmsg}``, and keyPattern/keyValue for E11000."""

from __future__ import annotations

from reactor.testing.double.replies import CommandFailed, Doc, error_code


def write_error(index: int, exc: Exception) -> Doc:
    """The ``writeErrors`` entry for the ``index``-th operation of a batch that raised ``exc``."""
    code, message = error_code(exc) or (
        1,
        f"test double internal error: {type(exc).__name__}: {exc}",
    )
    entry: Doc = {"index": index, "code": code, "errmsg": message}
    if isinstance(exc, CommandFailed):
        entry.update(exc.extra)
    return entry
