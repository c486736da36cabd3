"""The double's own tests: a fresh double per test and a client to it."""

from __future__ import annotations

from typing import Any

import pytest
from pymongo import AsyncMongoClient

from reactor.testing.fixtures import mongo_client, mongo_double, mongo_uri

__all__ = ["mongo_client", "mongo_double", "mongo_uri"]  # fixtures, used by name


@pytest.fixture
def client(mongo_client: AsyncMongoClient[dict[str, Any]]) -> AsyncMongoClient[dict[str, Any]]:
    """A client to this test's double (``reactor.testing.fixtures.mongo_client``)."""
    return mongo_client
