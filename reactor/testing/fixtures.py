"""Pytest fixtures for tests against the MongoDB double.

Use them from a ``conftest.py``::

    pytest_plugins = ["reactor.testing.fixtures"]

or import the ones you need: ``from reactor.testing.fixtures import mongo_double, mongo_uri``.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

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
