"""TTL indexes: a monitor that deletes expired documents once a minute, as MongoDB's does.

MongoDB's TTL monitor wakes every 60 seconds, so a document outlives its expiry by up to a
minute; the double keeps that cycle rather than deleting at once. Each deletion is a change
event, as an expiry on a replica set is. A document expires when the indexed field is a date (or
an array holding one) at least ``expireAfterSeconds`` in the past; other values never expire.
"""

from __future__ import annotations

import asyncio
import datetime as dt

from reactor.testing.double.context import Backend
from reactor.testing.double.engine import query

TTL_MONITOR_INTERVAL_S = 60.0


def expire(backend: Backend, now: dt.datetime) -> int:
    """One pass of the monitor at ``now`` (naive UTC): delete what has expired; how many."""
    removed = 0
    for coll in backend.catalog.collections():
        for index in list(coll.indexes.values()):
            seconds = index.spec.expire_after_s
            if seconds is None or len(index.fields) != 1:
                continue
            cutoff = now - dt.timedelta(seconds=float(seconds))
            for seq, _ in query.find(coll, {index.fields[0]: {"$lte": cutoff}}):
                if seq in coll.records:
                    before = coll.delete(seq)
                    backend.log.record("delete", coll.db, coll.name, before=before)
                    removed += 1
    return removed


async def monitor(backend: Backend, interval_s: float = TTL_MONITOR_INTERVAL_S) -> None:
    """Run :func:`expire` every ``interval_s`` until cancelled."""
    while True:
        await asyncio.sleep(interval_s)
        expire(backend, dt.datetime.now(dt.UTC).replace(tzinfo=None))
