"""Fixtures of the unit tests (their helper modules import as ``tests.unit.<name>``)."""

from __future__ import annotations

from typing import Any

import pytest
from pymongo import AsyncMongoClient

from reactor.testing.fixtures import mongo_client, mongo_double, mongo_uri

__all__ = ["mongo_client", "mongo_double", "mongo_uri"]  # fixtures, used by name


@pytest.fixture
def client(mongo_client: AsyncMongoClient[dict[str, Any]]) -> AsyncMongoClient[dict[str, Any]]:
    """The double tests' client: ``reactor.testing.fixtures.mongo_client`` under a short name."""
    return mongo_client
