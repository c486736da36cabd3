"""The example's end-to-end tests run a real reactor (mongo-reactor's test harness) on a double."""

from __future__ import annotations

import pytest

from reactor_example_handlers import invert_image, wordcount

pytest_plugins = ["reactor.testing.fixtures"]  # reactor_harness, mongo_double, ...


@pytest.fixture
def reactor_handlers() -> dict[str, object]:
    """The commands reactor_harness serves: the ones this package's entry points declare."""
    return {"wordcount": wordcount, "invert": invert_image}


@pytest.fixture
def anyio_backend() -> str:
    """PyMongo's async client runs on asyncio."""
    return "asyncio"
