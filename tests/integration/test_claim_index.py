"""On MongoDB, every claim tier is served by an index without a blocking sort."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from pymongo.asynchronous.database import AsyncDatabase

from reactor import queries
from reactor.queries import Tier
from reactor.store import Store
from tests.integration.backends import Backend

Db = AsyncDatabase[dict[str, Any]]
FINISHED = 100_000


@pytest.fixture
def real_mongodb(backend: Backend) -> Backend:
    """Only a real server explains its plans; the double refuses ``explain``."""
    if backend.double is not None:
        pytest.skip("query plans are MongoDB's: the double refuses explain (runs with Docker)")
    return backend


def _stages(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for key in ("queryPlan", "inputStage", "inputStages"):
        inner = plan.get(key)
        for child in inner if isinstance(inner, list) else [inner] if inner else []:
            yield from _stages(child)


@pytest.mark.timeout(600)
@pytest.mark.parametrize("tier", [Tier.POSITIVE, Tier.DEFAULT, Tier.NEGATIVE])
async def test_a_claim_uses_claim_order_without_a_blocking_sort(
    real_mongodb: Backend, db: Db, tier: Tier
) -> None:
    """With 100,000 finished jobs, explain shows claim_order and no SORT stage for the tier."""
    store = Store(db, owner="explain", lease_s=30)
    await store.ensure_indexes()
    now = datetime.now(UTC)
    for start in range(0, FINISHED, 10_000):
        await db.jobs.insert_many(
            [
                {"job_id": f"done-{i}", "status": "succeeded", "priority": i % 7 - 3}
                for i in range(start, start + 10_000)
            ]
        )
    await db.jobs.insert_many([{"job_id": f"q-{p}", "priority": p} for p in (-2, 0, 3)])
    query, sort = queries.tier_query(tier, now, "explain")
    command: dict[str, Any] = {
        "findAndModify": "jobs",
        "query": query,
        "update": queries.claim_update("explain", now, 30),
    }
    if sort:
        command["sort"] = dict(sort)
    explained = await db.command({"explain": command, "verbosity": "executionStats"})
    stages = list(_stages(explained["queryPlanner"]["winningPlan"]))
    names = [stage.get("stage") for stage in stages]
    assert "SORT" not in names, names
    assert "claim_order" in {stage.get("indexName") for stage in stages}, names
    assert explained["executionStats"]["totalDocsExamined"] <= 10
