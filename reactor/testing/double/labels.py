"""The error labels a MongoDB server (4.4 and later) attaches by itself to change-stream errors.

- ``ResumableChangeStreamError`` on a failed ``aggregate`` that opens a change stream or a failed
  ``getMore`` on one, when the code is in the ``RetriableError``, ``NetworkError`` or
  ``NeedRetargettingError`` categories, or is ``RetryChangeStream`` (234) or
  ``FailedToSatisfyReadPreference`` (133) (``ErrorLabelBuilder::isResumableChangeStreamError``).
- ``NonResumableChangeStreamError`` on ``ChangeStreamFatalError`` (280) and
  ``ChangeStreamHistoryLost`` (286), whatever the command.

``CursorNotFound`` (43) and ``LegacyNotPrimary`` (10058) get no label from a current server; the
driver resumes after 43 without one.
"""

from __future__ import annotations

from typing import Any

RESUMABLE = "ResumableChangeStreamError"
NON_RESUMABLE = "NonResumableChangeStreamError"

_RETRIABLE = frozenset(
    {6, 7, 89, 91, 134, 189, 262, 317, 358, 384, 402, 406, 407, 412, 453, 462, 9001}
    | {10107, 11600, 11602, 13435, 13436, 50915, 91331, 10045600}
)
_NEEDS_RETARGETING = frozenset({63, 150, 13388})  # 63 StaleShardVersion: up to 6.0
RESUMABLE_CODES = _RETRIABLE | _NEEDS_RETARGETING | {133, 234}
NON_RESUMABLE_CODES = frozenset({280, 286})


def server_labels(code: int, *, change_stream: bool) -> list[str]:
    """The labels MongoDB adds to error ``code`` (``change_stream``: the command is one's)."""
    if code in NON_RESUMABLE_CODES:
        return [NON_RESUMABLE]
    if change_stream and code in RESUMABLE_CODES:
        return [RESUMABLE]
    return []


def with_server_labels(reply: dict[str, Any], *, change_stream: bool) -> dict[str, Any]:
    """``reply`` (an error) with the server's labels merged into those it already carries."""
    code = reply.get("code")
    if reply.get("ok") or not isinstance(code, int):
        return reply
    labels = list(reply.get("errorLabels") or [])
    added = server_labels(code, change_stream=change_stream)
    labels += [label for label in added if label not in labels]
    if labels:
        reply["errorLabels"] = labels
    return reply
