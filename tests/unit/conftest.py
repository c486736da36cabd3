"""Unit tests import helper modules from this folder (also inside spawned pool workers)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
from pymongo import AsyncMongoClient

from reactor.testing.fixtures import mongo_client, mongo_double, mongo_uri

__all__ = ["mongo_client", "mongo_double", "mongo_uri"]  # fixtures, used by name

HERE = str(Path(__file__).parent)
if HERE not in sys.path:
    sys.path.insert(0, HERE)


@pytest.fixture
def client(mongo_client: AsyncMongoClient[dict[str, Any]]) -> AsyncMongoClient[dict[str, Any]]:
    """The double tests' client: ``reactor.testing.fixtures.mongo_client`` under a short name."""
    return mongo_client
