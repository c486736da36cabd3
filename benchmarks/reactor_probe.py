"""``reactor run`` with PyMongo's command monitoring: what the reactor really sends, counted.

    python benchmarks/reactor_probe.py COUNTS_FILE   (settings from REACTOR_* as usual)

A :class:`pymongo.monitoring.CommandListener` registered before the reactor builds its client
counts every command the process sends, by name. A change stream's ``aggregate`` and its
``getMore`` calls are counted apart (``aggregate(stream)``, ``getMore(stream)``): the cursor ids
come from the replies to ``$changeStream`` aggregates. A thread writes the counts to
``COUNTS_FILE`` (JSON, replaced atomically) every 50 ms while they change, so the bench can read
them at any moment; ``streams_open`` says how many change streams have started.

The listener itself costs CPU per command, so the bench measures CPU and latency on plain
``reactor run`` processes and counts round trips in runs of their own.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

from pymongo import monitoring

WRITE_EVERY_S = 0.05


class CommandCounter(monitoring.CommandListener):
    """Commands started, by name; change stream cursors apart."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}
        self.version = 0
        self.streams_open = 0
        self._stream_requests: set[int] = set()
        self._stream_cursors: set[int] = set()

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        name = event.command_name
        if name == "getMore" and int(event.command["getMore"]) in self._stream_cursors:
            name = "getMore(stream)"
        elif name == "aggregate" and _is_change_stream(event.command):
            name = "aggregate(stream)"
            self._stream_requests.add(event.request_id)
        self.counts[name] = self.counts.get(name, 0) + 1
        self.version += 1

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        if event.request_id in self._stream_requests:
            self._stream_requests.discard(event.request_id)
            self._stream_cursors.add(int(event.reply["cursor"]["id"]))
            self.streams_open += 1
            self.version += 1

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        self._stream_requests.discard(event.request_id)


def _is_change_stream(command: Any) -> bool:
    pipeline = command.get("pipeline") or [{}]
    return "$changeStream" in pipeline[0]


def write_forever(counter: CommandCounter, path: Path) -> None:
    written = -1
    while True:
        version = counter.version
        if version != written:
            snapshot = {
                "pid": os.getpid(),
                "counts": counter.counts.copy(),
                "streams_open": counter.streams_open,
                "at": time.monotonic(),
            }
            scratch = path.with_suffix(".tmp")
            scratch.write_text(json.dumps(snapshot))
            os.replace(scratch, path)
            written = version
        time.sleep(WRITE_EVERY_S)


def main() -> int:
    counter = CommandCounter()
    monitoring.register(counter)
    threading.Thread(
        target=write_forever, args=(counter, Path(sys.argv[1])), name="counts", daemon=True
    ).start()
    from reactor.cli.main import main as reactor_main

    return reactor_main(["run"])


if __name__ == "__main__":
    sys.exit(main())
