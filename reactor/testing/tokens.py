"""Cluster times and resume tokens: where an event sits in the change-stream history.

A position is ``(time, inc, kind)``: the event's cluster time plus a kind that orders the
entries sharing one cluster time. Resume tokens are ``{"_data": "82<time><inc><kind>"}`` in
fixed-width hex, so tokens order as strings in the same way as the positions they encode.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass

from bson.timestamp import Timestamp

from reactor.testing.replies import CommandFailed

KIND_START = 0  # startAtOperationTime: before the event at that cluster time
KIND_EVENT = 1  # a change event
KIND_INVALIDATE = 2  # the invalidate that follows a drop
KIND_HIGH_WATER = 3  # after everything up to and including that cluster time

_TOKEN = re.compile(r"82([0-9A-F]{8})([0-9A-F]{8})(0[0-3])")


@dataclass(frozen=True, order=True)
class Position:
    """A point in the change-stream history; later positions compare greater."""

    time: int
    inc: int
    kind: int

    @classmethod
    def at(cls, cluster_time: Timestamp, kind: int) -> Position:
        return cls(cluster_time.time, cluster_time.inc, kind)

    @property
    def cluster_time(self) -> Timestamp:
        return Timestamp(self.time, self.inc)

    def token(self) -> dict[str, str]:
        return {"_data": f"82{self.time:08X}{self.inc:08X}{self.kind:02X}"}


def parse_token(token: object) -> Position:
    """The position a resume token stands for; code 260 when it is not one of ours."""
    data = token.get("_data") if isinstance(token, dict) else None
    match = _TOKEN.fullmatch(data) if isinstance(data, str) else None
    if match is None:
        raise CommandFailed(260, f"invalid resume token: {token!r}")
    return Position(int(match.group(1), 16), int(match.group(2), 16), int(match.group(3), 16))


class Clock:
    """Hands out strictly increasing cluster times, ``Timestamp(unix seconds, counter)``."""

    def __init__(self) -> None:
        self._last = Timestamp(0, 0)
        self.tick()

    @property
    def now(self) -> Timestamp:
        """The latest cluster time handed out (the ``operationTime`` of replies)."""
        return self._last

    def tick(self) -> Timestamp:
        seconds = max(int(time.time()), self._last.time)
        inc = self._last.inc + 1 if seconds == self._last.time else 1
        self._last = Timestamp(seconds, inc)
        return self._last
