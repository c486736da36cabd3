"""Pytest fixtures for tests against the MongoDB double and a running reactor.

Use them from a ``conftest.py``::

    pytest_plugins = ["reactor.testing.fixtures"]

or import the ones you need: ``from reactor.testing.fixtures import reactor_harness``.

* ``mongo_double``, ``mongo_uri``: a fresh :class:`MongoDouble` per test and its URI.
* ``mongo_client``: an ``AsyncMongoClient`` connected to the test's double (async tests). It is
  a pytest-asyncio fixture when pytest-asyncio is installed, so it works in its strict and auto
  modes; under anyio's pytest plugin, keep pytest-asyncio out of auto mode (strict, or
  ``-p no:asyncio``).
* ``reactor_harness``: a reactor serving ``reactor_handlers`` with ``reactor_settings`` (override
  those two fixtures to choose), yielding a :class:`~reactor.testing.harness.RunningReactor`.
  It runs in a thread of its own, so it works in sync tests, under pytest-asyncio (strict or
  auto) and under anyio's plugin alike.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from pymongo import AsyncMongoClient

from reactor.testing.double.server import MongoDouble
from reactor.testing.harness import Handlers, RunningReactor, reactor_in_thread

try:  # pytest-asyncio's strict mode runs only the async fixtures it was told about
    from pytest_asyncio import fixture as async_fixture
except ImportError:  # pragma: no cover - anyio's plugin (or none) runs plain async fixtures
    async_fixture = pytest.fixture  # type: ignore[assignment]


@pytest.fixture
def mongo_double() -> Iterator[MongoDouble]:
    """A started :class:`MongoDouble`, fresh for each test and stopped after it."""
    with MongoDouble() as double:
        yield double


@pytest.fixture
def mongo_uri(mongo_double: MongoDouble) -> str:
    """The ``mongodb://`` URI of this test's double (a one-member replica set)."""
    return mongo_double.uri


@async_fixture
async def mongo_client(mongo_uri: str) -> AsyncIterator[AsyncMongoClient[dict[str, Any]]]:
    """An ``AsyncMongoClient`` connected to this test's double, closed after the test."""
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        mongo_uri, serverSelectionTimeoutMS=5000
    )
    yield client
    await client.close()


@pytest.fixture
def reactor_handlers() -> Handlers:
    """The handlers ``reactor_harness`` serves; override it: ``{"command": function}``.

    The default, ``None``, serves the installed entry points (and ``handler_modules``).
    """
    return None


@pytest.fixture
def reactor_settings() -> dict[str, Any]:
    """Settings for ``reactor_harness`` (``{"max_jobs": 2}``); override it to change them."""
    return {}


@pytest.fixture
def reactor_harness(request: pytest.FixtureRequest) -> Iterator[RunningReactor]:
    """A reactor on a fresh double serving ``reactor_handlers``, stopped after the test.

    ``reactor_handlers`` and ``reactor_settings`` are looked up by name, so defining either in
    your test module or conftest is enough, even when this fixture alone is imported.
    """
    handlers = _optional_fixture(request, "reactor_handlers", None)
    settings = _optional_fixture(request, "reactor_settings", {})
    with reactor_in_thread(handlers, **settings) as running:
        yield running


def _optional_fixture(request: pytest.FixtureRequest, name: str, default: Any) -> Any:
    try:
        return request.getfixturevalue(name)
    except pytest.FixtureLookupError:
        return default
