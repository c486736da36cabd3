"""The bench's clients speak JSON lines: one request on stdin, progress lines, then one reply.

A client (``reactor_client.py`` on the project's interpreter, ``peer/celery_client.py`` on the
peer's) is started once per case and kept between requests, so the orchestrator can read the
servers' CPU time right before and after each piece of work without counting the client's
start-up. ``{"ready": true}`` announces the client; a request is ``{"op": NAME, ...arguments}``;
the reply is ``{"reply": ...}``, or ``{"error": traceback}``; ``{"progress": {...}}`` lines may come
before it. Times are ``time.monotonic()`` readings, which every process on the machine shares.
"""

from __future__ import annotations

import json
import subprocess
import sys
import traceback
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

Progress = Callable[..., None]


def serve(ops: Mapping[str, Callable[..., Any]]) -> None:
    """Answer requests from stdin until it closes (the client's side)."""
    out = sys.stdout
    sys.stdout = sys.stderr  # nothing else may write on the protocol's stream
    _send(out, {"ready": True})

    def progress(**fields: Any) -> None:
        _send(out, {"progress": fields})

    for line in sys.stdin:
        request = json.loads(line)
        try:
            reply = ops[request.pop("op")](progress=progress, **request)
        except Exception:
            _send(out, {"error": traceback.format_exc()})
        else:
            _send(out, {"reply": reply})


def _send(out: IO[str], message: Any) -> None:
    out.write(json.dumps(message) + "\n")
    out.flush()


class Client:
    """The orchestrator's side: a client process and its requests."""

    def __init__(self, argv: Sequence[str], log: Path, env: Mapping[str, str] | None = None):
        self._log = open(log, "ab")  # noqa: SIM115 (closed in close())
        self.proc = subprocess.Popen(
            list(argv),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
            env=dict(env) if env is not None else None,
        )
        self._read_until("ready")

    def call(self, op: str, on_progress: Progress | None = None, **arguments: Any) -> Any:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps({"op": op, **arguments}) + "\n")
        self.proc.stdin.flush()
        return self._read_until("reply", on_progress)

    def _read_until(self, key: str, on_progress: Progress | None = None) -> Any:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            message = json.loads(line)
            if "error" in message:
                raise RuntimeError(f"client {self.proc.args[1]}: {message['error']}")
            if "progress" in message and on_progress is not None:
                on_progress(**message["progress"])
            if key in message:
                return message[key]
        raise RuntimeError(f"client {self.proc.args!r} exited with {self.proc.wait()}")

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
        self._log.close()
