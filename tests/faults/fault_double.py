"""The MongoDB double in a process of its own, its fault hooks on a small HTTP control port.

Run as a script (the fault suite and ``scripts/soak.py`` do)::

    python tests/faults/fault_double.py --host 127.0.0.2 --port P --advertised-host 127.0.0.1

It prints one JSON line, ``{"pid", "port", "control_port", "uri"}``, once both ports listen,
and serves until SIGTERM (or SIGKILL: the suite restarts it empty that way). Control requests
are ``POST /<hook>`` with a JSON object of the hook's keyword arguments; ``GET /pending`` says
how many injected failures are still armed. A separate process lets the suite kill the double
without killing itself, and keeps the reactor core free of test-only control code.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from reactor.testing import MongoDouble

HOOKS = (
    "drop_connections",
    "fail_next",
    "forget_history",
    "stall_change_streams",
    "resume_change_streams",
)


def pending_failures(double: MongoDouble) -> int:
    """Injected failures still armed (reads the double's fault state; a test helper's liberty)."""

    async def count() -> int:
        faults = double._require_backend().faults
        return sum(failure.remaining for failure in faults._failures)

    return double._call(count)


class Control(BaseHTTPRequestHandler):
    """``POST /<hook>`` calls the hook; ``GET /pending`` counts armed failures."""

    double: MongoDouble  # set on the subclass made by serve_control

    def do_POST(self) -> None:
        name = self.path.strip("/")
        if name not in HOOKS:
            self._reply(404, {"error": f"no hook {name!r}; hooks: {', '.join(HOOKS)}"})
            return
        length = int(self.headers.get("Content-Length") or 0)
        kwargs = json.loads(self.rfile.read(length) or b"{}")
        try:
            getattr(self.double, name)(**kwargs)
        except Exception as exc:
            self._reply(500, {"error": f"{type(exc).__name__}: {exc}"})
            return
        self._reply(200, {"ok": True})

    def do_GET(self) -> None:
        if self.path != "/pending":
            self._reply(404, {"error": "GET /pending only"})
            return
        self._reply(200, {"pending": pending_failures(self.double)})

    def _reply(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        return None  # quiet: the suite logs what it does itself


def serve_control(double: MongoDouble, host: str, port: int) -> ThreadingHTTPServer:
    handler = type("BoundControl", (Control,), {"double": double})
    server = ThreadingHTTPServer((host, port), handler)
    threading.Thread(target=server.serve_forever, name="control", daemon=True).start()
    return server


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.2")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--advertised-host", default=None)
    parser.add_argument("--control-port", type=int, default=0)
    ns = parser.parse_args(argv)
    stop_signals = {signal.SIGINT, signal.SIGTERM}
    signal.pthread_sigmask(signal.SIG_BLOCK, stop_signals)  # threads inherit the mask
    double = MongoDouble(ns.host, ns.port, advertised_host=ns.advertised_host).start()
    control = serve_control(double, "127.0.0.1", ns.control_port)
    ready = {
        "pid": os.getpid(),
        "port": double.port,
        "control_port": control.server_address[1],
        "uri": double.uri,
    }
    print(json.dumps(ready), flush=True)
    try:
        signal.sigwait(stop_signals)
    finally:
        control.shutdown()
        double.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
