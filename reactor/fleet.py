"""The fleet: every running reactor keeps a document in ``reactor_workers`` fresh.

Every ``fleet_heartbeat_s`` a reactor upserts its entry (shape in :mod:`reactor.model`): who it is,
its jobs in flight (read from admission, the one count), and a sample of its CPU and memory, its
pool workers and their children included, with the queue length it saw. The last hour of samples
is kept on the entry, which is what the dashboard plots.

A reactor that stops cleanly deletes its entry. One killed with SIGKILL leaves it behind: a TTL
index on ``last_seen`` deletes it ``fleet_ttl_s`` after its last heartbeat, but MongoDB's TTL
monitor wakes only once a minute, so readers (:func:`members`) also skip entries older than
``fleet_ttl_s``: a killed reactor leaves every listing within its TTL, to the second.
"""

from __future__ import annotations

import math
import os
import socket
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

import anyio
import psutil
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import OperationFailure, PyMongoError

from reactor import __version__, model, queries
from reactor.driver import Calls
from reactor.logging import get_logger
from reactor.store import utcnow

log = get_logger("reactor.fleet")

Db = AsyncDatabase[dict[str, Any]]
INDEX_OPTIONS_CONFLICT = 85
CALL_TIMEOUT_S = 5.0


def member_of(
    owner: str, name: str, handlers: list[str], max_jobs: int, cpu_workers: int
) -> model.FleetMember:
    """This process as a fleet member."""
    return model.FleetMember(
        owner=owner,
        name=name,
        host=socket.gethostname(),
        pid=os.getpid(),
        version=__version__,
        handlers=tuple(handlers),
        max_jobs=max_jobs,
        cpu_workers=cpu_workers,
        started_at=utcnow(),
    )


class Sampler:
    """CPU (percent of one core) and resident memory of this process and all it started."""

    def __init__(self) -> None:
        self._process = psutil.Process()
        self._last = (time.monotonic(), self._cpu_total_s())

    def _cpu_total_s(self) -> float:
        times = self._process.cpu_times()
        total = times.user + times.system + times.children_user + times.children_system
        for child in self._children():
            try:
                child_times = child.cpu_times()
            except psutil.Error:
                continue
            total += child_times.user + child_times.system
        return total

    def _children(self) -> list[psutil.Process]:
        try:
            return self._process.children(recursive=True)
        except psutil.Error:
            return []

    def rss_mb(self) -> float:
        total = self._process.memory_info().rss
        for child in self._children():
            try:
                total += child.memory_info().rss
            except psutil.Error:
                continue
        return total / 2**20

    def cpu_percent(self) -> float:
        """Since the previous call (a child that ended in between may make it dip, never < 0)."""
        now, cpu_s = time.monotonic(), self._cpu_total_s()
        (then, before), self._last = self._last, (now, cpu_s)
        return max(0.0, 100.0 * (cpu_s - before) / max(now - then, 1e-6))


class Heartbeat:
    """Keeps this reactor's entry in ``reactor_workers``; a task of the service."""

    def __init__(
        self,
        db: Db,
        member: model.FleetMember,
        calls: Calls,
        *,
        in_flight: Callable[[], int],
        queued: Callable[[], Any],
        period_s: float,
        ttl_s: float,
        clock: Callable[[], datetime] = utcnow,
        on_fleet: Callable[[list[str]], None] | None = None,
    ) -> None:
        self.collection = db[model.WORKERS_COLLECTION]
        self.calls = calls
        self.member = member
        self.in_flight = in_flight
        self.queued = queued
        self.period_s = period_s
        self.ttl_s = ttl_s
        self.clock = clock  # MongoDB's time as this reactor knows it: samples are read with it
        self.keep = max(1, math.ceil(model.SAMPLE_WINDOW_S / period_s))
        self.sampler = Sampler()
        self.on_fleet = on_fleet  # told the live members with room after every beat

    async def run(self) -> None:
        """Beat until cancelled, then delete the entry (bounded, shielded)."""
        try:
            await self._ensure_index()
            while True:
                await self.beat()
                await anyio.sleep(self.period_s)
        finally:
            try:
                with self.calls.guard("fleet_leave", CALL_TIMEOUT_S):
                    await self.collection.delete_one({model.ID: self.member.owner})
            except PyMongoError as exc:
                log.warning("fleet_leave_failed", error=str(exc))

    async def beat(self) -> None:
        """Write one heartbeat (a failure is logged: the next one tries again)."""
        sample = await self._sample()
        update = queries.fleet_beat(
            self.member.to_doc(), sample.to_doc(), sample.in_flight, self.keep
        )
        call = self.collection.update_one({model.ID: self.member.owner}, update, upsert=True)
        try:
            await self.calls.run("fleet_heartbeat", CALL_TIMEOUT_S, call)
            if self.on_fleet is not None:
                look = with_room(self.collection.database, self.ttl_s, self.clock())
                self.on_fleet(await self.calls.run("fleet_read", CALL_TIMEOUT_S, look))
        except PyMongoError as exc:  # MongoDB away: the next beat tries again
            log.warning("fleet_heartbeat_failed", error=str(exc) or type(exc).__name__)

    async def _sample(self) -> model.FleetSample:
        try:
            queued: int | None = int(await self.queued())
        except PyMongoError:
            queued = None
        return model.FleetSample(
            at=self.clock(),
            cpu_percent=self.sampler.cpu_percent(),
            rss_mb=self.sampler.rss_mb(),
            in_flight=self.in_flight(),
            queued=queued,
        )

    async def _ensure_index(self) -> None:
        """The TTL index on ``last_seen``; a changed ``fleet_ttl_s`` updates it in place."""
        name, ttl = queries.WORKER_INDEXES_NAME, max(1, math.ceil(self.ttl_s))
        create = self.collection.create_index(
            [(model.LAST_SEEN, 1)], name=name, expireAfterSeconds=ttl
        )
        try:
            try:
                await self.calls.run("fleet_index", CALL_TIMEOUT_S, create)
            except OperationFailure as exc:
                if exc.code != INDEX_OPTIONS_CONFLICT:
                    raise
                change = {"name": name, "expireAfterSeconds": ttl}
                command = self.collection.database.command(
                    "collMod", self.collection.name, index=change
                )
                await self.calls.run("fleet_index", CALL_TIMEOUT_S, command)
        except PyMongoError as exc:
            log.warning("fleet_index_failed", error=str(exc) or type(exc).__name__)


async def members(db: Db, ttl_s: float, now: datetime | None = None) -> list[dict[str, Any]]:
    """The live fleet, by name: entries seen within ``ttl_s``."""
    query = queries.fleet_alive(now or utcnow(), ttl_s)
    cursor = db[model.WORKERS_COLLECTION].find(query, sort=[("name", 1), (model.ID, 1)])
    return [doc async for doc in cursor]


async def with_room(db: Db, ttl_s: float, now: datetime) -> list[str]:
    """The owners of the live members that had a free slot at their last heartbeat."""
    query = {**queries.fleet_alive(now, ttl_s), "$expr": {"$lt": ["$in_flight", "$max_jobs"]}}
    cursor = db[model.WORKERS_COLLECTION].find(query, {model.ID: 1})
    return [str(doc[model.ID]) async for doc in cursor]
