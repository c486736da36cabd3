"""Pytest fixtures for tests against the MongoDB double.

Use them from a ``conftest.py``::

    pytest_plugins = ["reactor.testing.fixtures"]

or import the ones you need: ``from reactor.testing.fixtures import mongo_double, mongo_uri``.
``mongo_client`` is an ``AsyncMongoClient`` connected to the test's double (async tests).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from pymongo import AsyncMongoClient

from reactor.testing.server import MongoDouble


@pytest.fixture
def mongo_double() -> Iterator[MongoDouble]:
    """A started :class:`MongoDouble`, fresh for each test and stopped after it."""
    with MongoDouble() as double:
        yield double


@pytest.fixture
def mongo_uri(mongo_double: MongoDouble) -> str:
    """The ``mongodb://`` URI of this test's double (a one-member replica set)."""
    return mongo_double.uri


@pytest.fixture
async def mongo_client(mongo_uri: str) -> AsyncIterator[AsyncMongoClient[dict[str, Any]]]:
    """An ``AsyncMongoClient`` connected to this test's double, closed after the test."""
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        mongo_uri, serverSelectionTimeoutMS=5000
    )
    yield client
    await client.close()
