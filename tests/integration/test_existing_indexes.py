"""Collections that already have indexes on the reactor's keys, as a polling loop's often do."""

from __future__ import annotations

from typing import Any

import anyio
import pytest
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from reactor import queries
from reactor.cli import main as cli
from reactor.client import wait_for_result
from reactor.config import Settings
from reactor.errors import IndexConflict
from tests.integration import jobs_lib
from tests.integration.reactors import running

Db = AsyncDatabase[dict[str, Any]]


async def runs_a_job(settings: Settings, db: Db) -> None:
    """A reactor starts on these collections and runs a job through them."""
    async with running(settings, jobs_lib.registry(jobs_lib.Tally())):
        await db.jobs.insert_one({"job_id": "after", "command": "record"})
        result = await wait_for_result(db, "after", timeout_s=30)
    assert result["status"] == "succeeded"


async def startup_error(settings: Settings) -> str:
    with pytest.raises(ExceptionGroup) as caught:
        async with running(settings, jobs_lib.registry(jobs_lib.Tally())):
            pass
    [error] = caught.value.exceptions
    assert isinstance(error, IndexConflict)
    return str(error)


async def migrate(
    settings: Settings, mode: str, capsys: pytest.CaptureFixture[str]
) -> tuple[int, str]:
    flags = ["--mongo-uri", settings.mongo_uri, "--db", settings.db]
    code = await anyio.to_thread.run_sync(cli, ["migrate", mode, *flags])
    return code, capsys.readouterr().out


@pytest.mark.parametrize("collection", ["jobs", "results"])
async def test_a_unique_job_id_1_is_served_without_a_change(
    settings: Settings, db: Db, collection: str
) -> None:
    """create_index("job_id", unique=True) from the loop: used as it is, nothing added."""
    await db[collection].create_index("job_id", unique=True)
    await runs_a_job(settings, db)
    names = set(await db[collection].index_information())
    assert "job_id_1" in names
    assert "job_id_unique" not in names
    with pytest.raises(DuplicateKeyError):
        await db[collection].insert_one({"job_id": "after"})


@pytest.mark.parametrize("collection", ["jobs", "results"])
async def test_a_plain_job_id_1_stops_startup_until_migrate_apply_replaces_it(
    settings: Settings, db: Db, capsys: pytest.CaptureFixture[str], collection: str
) -> None:
    """A non-unique job_id_1: run stops naming it; --check says what --apply does; --apply does."""
    await db[collection].create_index("job_id")
    message = await startup_error(settings)
    assert "\n" not in message
    assert message.startswith(f"{collection} has the index job_id_1 (it is not unique)")
    assert "run `reactor migrate --apply` to replace it" in message

    code, out = await migrate(settings, "--check", capsys)
    assert code == 2
    assert f"{collection}: --apply would drop the index job_id_1 (it is not unique) and " in out
    assert "create job_id_unique {job_id: 1} (unique" in out
    assert "job_id_1" in await db[collection].index_information()

    code, out = await migrate(settings, "--apply", capsys)
    assert code == 0
    assert f"{collection}: dropped the index job_id_1 (it is not unique) and created " in out
    names = set(await db[collection].index_information())
    assert "job_id_1" not in names
    assert "job_id_unique" in names
    await runs_a_job(settings, db)


@pytest.mark.parametrize("name", sorted(queries.INDEXES))
async def test_each_index_under_another_name_is_used_as_it_is(
    settings: Settings, db: Db, name: str
) -> None:
    """The same keys and options under the loop's own name (which MongoDB would refuse to
    duplicate, 85) serve instead of the reactor's index, for every index the reactor needs."""
    keys, options = queries.INDEXES[name]
    await db.jobs.create_index(keys, name="theirs", **options)
    await runs_a_job(settings, db)
    names = set(await db.jobs.index_information())
    assert "theirs" in names
    assert name not in names


async def test_a_unique_index_on_keys_the_reactor_repeats_stops_startup(
    settings: Settings, db: Db
) -> None:
    """A unique (status, lease_expires_at) index would refuse the reactor's claims: named."""
    await db.jobs.create_index([("status", 1), ("lease_expires_at", 1)], unique=True, name="u")
    message = await startup_error(settings)
    assert message.startswith("jobs has the index u (it is unique, and the reactor writes many")
    assert "where the reactor needs claim {status: 1, lease_expires_at: 1}" in message
