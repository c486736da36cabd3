"""Round trips: what ``reactor run`` sends to MongoDB per job, counted by ``reactor_probe.py``.

One reactor and ``extra`` idle ones, each through the probe; the commands per job at a trickle
(one job at a time) and, with one reactor, in a burst; the streams' ``getMore`` apart, and the
figures net of what the same reactors send idle over as long a time.
"""

from __future__ import annotations

import contextlib
import json
import time
from pathlib import Path
from typing import Any

from cases import STARTUP_TIMEOUT_S, Bench, reactor_client, running
from lineproto import Client
from procs import Service, start_double, start_reactor

IDLE_WINDOW_S = 3.0  # commands sent by idle reactors, counted over this long
FLEET_HEARTBEAT_S = 1.0  # every reactor knows the others (the rendezvous) after two of these
COUNT_SETTLE_S = 1.0
STREAM_GETMORE = "getMore(stream)"


def roundtrip_case(bench: Bench, extra: int) -> dict[str, Any]:
    """MongoDB commands per job with one reactor and ``extra`` idle ones, at a trickle."""
    folder = bench.folder(f"roundtrips-{1 + extra}")
    double = start_double(folder)
    uri = str(double.extra["uri"])
    counts = [folder / f"counts-{k}.json" for k in range(1 + extra)]
    reactors = [
        start_reactor(
            f"reactor-{k}",
            uri,
            folder / "jobs",
            folder,
            counts=path,
            fleet_heartbeat_s=str(FLEET_HEARTBEAT_S),
        )
        for k, path in enumerate(counts)
    ]
    with running(folder, double, *reactors):
        client = reactor_client(uri, folder)
        try:
            client.call("warmup", n=bench.sizes.warmup, timeout_s=STARTUP_TIMEOUT_S)
            wait_streams(counts, reactors)
            time.sleep(max(COUNT_SETTLE_S, 2.5 * FLEET_HEARTBEAT_S))  # the fleet known to all
            idle = idle_rates(counts)
            out: dict[str, Any] = {
                "reactors": 1 + extra,
                "idle_commands_per_s": round(sum(idle.values()) - idle.get(STREAM_GETMORE, 0), 2),
                "idle_by_command_per_s": {k: round(v, 2) for k, v in sorted(idle.items()) if v},
            }
            out["trickle"] = counted(client, counts, "latency", bench.sizes.trickle, idle)
            if extra == 0:
                out["burst"] = counted(client, counts, "burst", bench.sizes.counted_burst, idle)
            return out
        finally:
            client.close()


def read_counts(paths: list[Path]) -> dict[str, int]:
    """The commands every probed reactor has sent so far, by name, summed."""
    total: dict[str, int] = {}
    for path in paths:
        with contextlib.suppress(FileNotFoundError):
            for name, n in json.loads(path.read_text())["counts"].items():
                total[name] = total.get(name, 0) + n
    return total


def wait_streams(paths: list[Path], reactors: list[Service]) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        opened = 0
        for path in paths:
            with contextlib.suppress(FileNotFoundError, ValueError):
                opened += json.loads(path.read_text())["streams_open"] > 0
        if opened == len(paths):
            return
        for reactor in reactors:
            reactor.check_alive()
        time.sleep(0.1)
    raise RuntimeError(f"not every reactor opened its change stream in {STARTUP_TIMEOUT_S} s")


def idle_rates(paths: list[Path]) -> dict[str, float]:
    """Commands per second the reactors send with no job about, by name (heartbeats, sweeps)."""
    before = read_counts(paths)
    time.sleep(IDLE_WINDOW_S)
    after = read_counts(paths)
    return {name: (after[name] - before.get(name, 0)) / IDLE_WINDOW_S for name in after}


def counted(
    client: Client, paths: list[Path], op: str, jobs: int, idle: dict[str, float]
) -> dict[str, Any]:
    """Commands per job while ``op`` runs ``jobs`` jobs, by name; the streams' getMore apart.

    ``net`` figures take off what the reactors would have sent idle over the same window.
    """
    before, started = read_counts(paths), time.monotonic()
    client.call(op, n=jobs)
    time.sleep(COUNT_SETTLE_S)  # the last job's final writes
    after, window_s = read_counts(paths), time.monotonic() - started
    sent = {name: after[name] - before.get(name, 0) for name in after}
    net = {name: n - idle.get(name, 0.0) * window_s for name, n in sent.items()}

    def per_job(counts: dict[str, float]) -> float:
        return round(sum(n for k, n in counts.items() if k != STREAM_GETMORE) / jobs, 3)

    return {
        "jobs": jobs,
        "window_s": round(window_s, 2),
        "round_trips_per_job": per_job(sent),
        "round_trips_per_job_net_of_idle": per_job(net),
        "stream_getmores_per_job": round(sent.get(STREAM_GETMORE, 0) / jobs, 3),
        "by_command": {k: round(n / jobs, 3) for k, n in sorted(sent.items()) if n},
    }
