"""Server diagnostics a driver's test harness asks for: ``getCmdLineOpts`` and ``serverStatus``.

PyMongo's own test suite reads both before it runs a single test (to learn whether auth, IPv6 or
test commands are on). The double answers as a ``mongod`` started with ``--replSet`` and nothing
else: no auth, no IPv6, no test commands (so fail-point tests skip themselves).
"""

from __future__ import annotations

import datetime as dt
import os
import time

from reactor.testing.double.context import Context, command
from reactor.testing.double.replies import Doc

_STARTED_S = time.monotonic()


@command("getCmdLineOpts")
async def get_cmd_line_opts(ctx: Context, cmd: Doc) -> Doc:
    replica_set = ctx.backend.replica_set
    host, _, port = ctx.backend.address.rpartition(":")
    return {
        "argv": ["mongod", "--replSet", replica_set, "--bind_ip", host, "--port", port],
        "parsed": {
            "net": {"bindIp": host, "port": int(port)},
            "replication": {"replSet": replica_set},
        },
    }


@command("serverStatus")
async def server_status(ctx: Context, cmd: Doc) -> Doc:
    uptime_s = time.monotonic() - _STARTED_S
    return {
        "host": ctx.backend.address,
        "version": ctx.backend.server.version,
        "process": "mongod",
        "pid": os.getpid(),
        "uptime": float(int(uptime_s)),
        "uptimeMillis": int(uptime_s * 1000),
        "localTime": dt.datetime.now(dt.UTC).replace(tzinfo=None),
        "storageEngine": {"name": "mongo-reactor-double", "supportsCommittedReads": False},
        "repl": {"setName": ctx.backend.replica_set, "isWritablePrimary": True},
    }
