"""An in-process MongoDB wire-protocol server for tests: :class:`MongoDouble`.

Real PyMongo clients (sync and async) connect to it as to a one-member replica set; storage,
indexes and query semantics come from :mod:`reactor.testing.engine` (aggregation stages from
mongomock). Pytest fixtures live in :mod:`reactor.testing.fixtures`.
"""

from reactor.testing.server import DoubleNotRunning, MongoDouble

__all__ = ["DoubleNotRunning", "MongoDouble"]
