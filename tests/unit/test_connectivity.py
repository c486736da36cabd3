"""Connectivity: the one place that knows whether MongoDB is away, and what that implies."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import anyio
from pymongo.hello import Hello
from pymongo.monitoring import ServerDescriptionChangedEvent
from pymongo.server_description import ServerDescription
from structlog.testing import capture_logs

from reactor.connectivity import Connectivity


async def test_an_outage_explains_the_leases_that_ran_out_around_it() -> None:
    """A lease that expired while (or a lease's length around when) MongoDB was unreachable is
    explained by the outage; one that expired before it, or with no outage seen, is not."""
    seen = Connectivity(lease_s=5)
    now = datetime.now(UTC)
    assert not seen.explains(now)  # no outage seen
    seen.came_back()  # the first sight of MongoDB at startup: opens nothing
    assert not seen.explains(now)
    seen.went_away()
    assert seen.explains(datetime.now(UTC) + timedelta(seconds=3))  # still away
    seen.came_back()
    assert seen.explains(now - timedelta(seconds=4))
    assert seen.explains(datetime.now(UTC) + timedelta(seconds=4))
    assert not seen.explains(now - timedelta(seconds=30))
    assert not seen.explains(datetime.now(UTC) + timedelta(seconds=30))
    assert not seen.explains(None)


async def test_failed_calls_mark_an_outage_the_monitor_did_not_see() -> None:
    """A blackhole times calls out without the driver's monitor noticing: a call that failed
    after 10 s says MongoDB was away for those 10 s."""
    seen = Connectivity(lease_s=2)
    now = datetime.now(UTC)
    seen.call_failed(10)
    assert seen.explains(now - timedelta(seconds=9))
    assert not seen.explains(now - timedelta(seconds=15))
    seen.call_failed(0.5)  # the same outage, still under way
    assert seen.explains(now - timedelta(seconds=9))


async def test_reclaims_wait_a_lease_after_mongodb_was_away() -> None:
    """Expired leases are taken over at startup, but not within a lease's length of a failure."""
    seen = Connectivity(lease_s=0.2)
    assert seen.reclaim_allowed()
    seen.call_failed(0.0)
    assert not seen.reclaim_allowed()
    await anyio.sleep(0.25)
    assert seen.reclaim_allowed()


async def test_only_a_return_after_an_absence_is_logged_and_caught_up() -> None:
    """The first sight of MongoDB logs nothing and wakes no catch-up; a return after an
    unreachable spell logs both lines and wakes wait_back."""
    seen = Connectivity(lease_s=5)
    back = anyio.Event()

    async def follow() -> None:
        await seen.wait_back()
        back.set()

    with capture_logs() as logs:
        async with anyio.create_task_group() as tg:
            tg.start_soon(follow)
            seen.came_back()
            await anyio.wait_all_tasks_blocked()
            assert not back.is_set()
            seen.went_away()
            assert seen.away
            seen.came_back()
            with anyio.fail_after(5):
                await back.wait()
    events = [entry["event"] for entry in logs]
    assert events == ["mongodb_unreachable", "mongodb_reachable"]
    assert not seen.away


async def test_the_driver_monitor_reports_on_the_loop() -> None:
    """The server listener's writable/unwritable transitions reach the connectivity."""
    seen = Connectivity(lease_s=5)
    primary = Hello({"ok": 1, "isWritablePrimary": True, "setName": "rs", "maxWireVersion": 25})
    writable, gone = ServerDescription(("h", 1), primary), ServerDescription(("h", 1))
    seen.monitor.description_changed(ServerDescriptionChangedEvent(writable, gone, ("h", 1), 1))
    await anyio.sleep(0.01)  # call_soon_threadsafe delivers on the next loop iteration
    assert seen.away
    seen.monitor.description_changed(ServerDescriptionChangedEvent(gone, writable, ("h", 1), 1))
    await anyio.sleep(0.01)
    assert not seen.away
