"""Cluster times and resume tokens: where an event sits in the change-stream history.

A position is ``(time, inc, kind, fragment)``: the event's cluster time plus a kind that orders
the entries sharing one cluster time, and for a fragment of an event split by
``$changeStreamSplitLargeEvent`` its number (0 for a whole event). Resume tokens are
``{"_data": "82<time><inc><kind>[<fragment>]"}`` in fixed-width hex, so tokens order as strings
in the same way as the positions they encode.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass

from bson.timestamp import Timestamp

from reactor.testing.double.replies import CommandFailed

KIND_START = 0  # startAtOperationTime: before the event at that cluster time
KIND_EVENT = 1  # a change event
KIND_INVALIDATE = 2  # the invalidate that follows a drop
KIND_HIGH_WATER = 3  # after everything up to and including that cluster time

_TOKEN = re.compile(r"82([0-9A-F]{8})([0-9A-F]{8})(0[0-3])([0-9A-F]{4})?")


@dataclass(frozen=True, order=True)
class Position:
    """A point in the change-stream history; later positions compare greater."""

    time: int
    inc: int
    kind: int
    fragment: int = 0

    @classmethod
    def at(cls, cluster_time: Timestamp, kind: int) -> Position:
        return cls(cluster_time.time, cluster_time.inc, kind)

    @property
    def cluster_time(self) -> Timestamp:
        return Timestamp(self.time, self.inc)

    def token(self) -> dict[str, str]:
        suffix = f"{self.fragment:04X}" if self.fragment else ""
        return {"_data": f"82{self.time:08X}{self.inc:08X}{self.kind:02X}{suffix}"}

    def whole(self) -> Position:
        """The position of the event this fragment belongs to (itself for a whole event)."""
        return Position(self.time, self.inc, self.kind)

    def fragment_of(self, number: int) -> Position:
        return Position(self.time, self.inc, self.kind, number)


def parse_token(token: object) -> Position:
    """The position a resume token stands for; code 260 when it is not one of ours."""
    data = token.get("_data") if isinstance(token, dict) else None
    match = _TOKEN.fullmatch(data) if isinstance(data, str) else None
    if match is None:
        raise CommandFailed(260, f"invalid resume token: {token!r}")
    time, inc, kind = (int(match.group(i), 16) for i in (1, 2, 3))
    return Position(time, inc, kind, int(match.group(4) or "0", 16))


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
