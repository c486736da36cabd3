"""structlog processors that make lines safe to ship: bounded in size, exceptions without locals.

:class:`LineCap` keeps a rendered JSON line under ``max_bytes``: when a line is longer, it
truncates long strings (noting each one's original length), shortens long lists such as
traceback frames (keeping the first and the innermost ones, noting how many were left out), and
records the line's original size in ``truncated_from_bytes``. If no truncation fits, only the
core fields are kept and the others are named in ``dropped_fields``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

DEFAULT_MAX_LINE_BYTES = 2048
CORE_FIELDS = ("timestamp", "level", "logger", "event", "job_id", "command", "attempt")
_LIMITS = (1024, 512, 256, 128, 64, 32)  # string lengths tried, longest first
_MAX_DEPTH = 6
_MAX_KEYS = 40  # a mapping's keys are its structure (an exception's frames...): cut only its values


class LineCap:
    """Truncate an event dict until its JSON rendering fits in ``max_bytes``."""

    def __init__(self, max_bytes: int = DEFAULT_MAX_LINE_BYTES) -> None:
        self.max_bytes = max_bytes

    def __call__(self, logger: Any, method_name: str, event_dict: Any) -> Any:
        size = json_size(event_dict)
        if size <= self.max_bytes:
            return event_dict
        for limit in _LIMITS:
            shrunk = {key: shrink(value, limit) for key, value in event_dict.items()}
            shrunk["truncated_from_bytes"] = size
            if json_size(shrunk) <= self.max_bytes:
                return shrunk
        kept = {key: shrink(event_dict[key], 32) for key in CORE_FIELDS if key in event_dict}
        kept["truncated_from_bytes"] = size
        kept["dropped_fields"] = sorted(str(key) for key in event_dict if key not in kept)[:20]
        return kept


class CappedJSONRenderer:
    """The JSON renderer with :class:`LineCap` built in: one ``json.dumps`` for a line that
    fits (most do), the cap's truncation only for one that does not."""

    def __init__(self, max_bytes: int = DEFAULT_MAX_LINE_BYTES) -> None:
        self.cap = LineCap(max_bytes)

    def __call__(self, logger: Any, method_name: str, event_dict: Any) -> str:
        line = json.dumps(event_dict, default=str)
        if len(line) <= self.cap.max_bytes:
            return line
        return json.dumps(self.cap(logger, method_name, event_dict), default=str)


def json_size(event_dict: Mapping[str, Any]) -> int:
    """The length of the line structlog's JSON renderer makes of ``event_dict`` (ASCII-escaped)."""
    return len(json.dumps(event_dict, default=str))


def shrink(value: Any, limit: int, depth: int = 0) -> Any:
    """``value`` with strings cut to ``limit`` characters and lists to a few items, recursively."""
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, str):
        return _cut(value, limit)
    if depth >= _MAX_DEPTH:
        return _cut(str(value), limit)
    if isinstance(value, Mapping):
        items = list(value.items())
        kept = {_cut(str(k), 64): shrink(v, limit, depth + 1) for k, v in items[:_MAX_KEYS]}
        if len(items) > len(kept):
            kept["..."] = f"{len(items) - len(kept)} more keys left out"
        return kept
    if isinstance(value, list | tuple):
        return _shrink_list(list(value), limit, depth)
    text = str(value)
    return _cut(text, limit) if len(text) > limit else value


def _shrink_list(items: list[Any], limit: int, depth: int) -> list[Any]:
    keep = _keep(limit)
    if len(items) <= keep:
        return [shrink(item, limit, depth + 1) for item in items]
    # The first item and the last ones: for traceback frames, where it started and where it broke.
    head, tail = items[:1], items[len(items) - (keep - 1) :]
    marker = f"... {len(items) - len(head) - len(tail)} items left out"
    return [
        *(shrink(item, limit, depth + 1) for item in head),
        marker,
        *(shrink(item, limit, depth + 1) for item in tail),
    ]


def _keep(limit: int) -> int:
    return max(2, limit // 64)


def _cut(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return f"{text[:limit]}...[truncated, {len(text)} chars]"
