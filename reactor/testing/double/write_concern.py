"""Write concerns a one-member replica set cannot satisfy, reported as MongoDB reports them.

Every write is applied at once and is as durable as it gets, so ``w: 1``, ``w: "majority"`` and
``j`` are satisfied as soon as the command ran. ``w`` above the member count fails after the
write with ``writeConcernError`` 100 ``UnsatisfiableWriteConcern``, and a ``w`` naming a tag set
the replica set does not define with 79 ``UnknownReplWriteConcern``, as on MongoDB.
"""

from __future__ import annotations

from typing import Any

from reactor.testing.double.replies import Doc, code_name

MEMBERS = 1


def write_concern_error(cmd: Doc) -> Doc | None:
    """The ``writeConcernError`` the command's ``writeConcern`` earns, if any."""
    concern: Any = cmd.get("writeConcern")
    w = concern.get("w") if isinstance(concern, dict) else None
    if isinstance(w, bool) or w is None:
        return None
    if isinstance(w, int | float) and w > MEMBERS:
        return _error(100, "Not enough data-bearing nodes", concern)
    if isinstance(w, str) and w != "majority":
        return _error(
            79, f"No write concern mode named '{w}' found in replica set configuration", concern
        )
    return None


def _error(code: int, message: str, concern: Doc) -> Doc:
    return {
        "code": code,
        "codeName": code_name(code),
        "errmsg": message,
        "errInfo": {"writeConcern": {**concern, "provenance": "clientSupplied"}},
    }
