"""Testing without MongoDB: the wire-protocol double, and a reactor to run handlers against it.

- :class:`MongoDouble`: an in-process MongoDB server that real PyMongo clients (sync and async)
  connect to as to a one-member replica set; storage, indexes and query semantics come from
  :mod:`reactor.testing.double.engine` (aggregation stages from mongomock).
- :func:`running_reactor`: an async context manager that starts a double (or uses a URI) and a
  reactor with the handlers you give, and yields a :class:`RunningReactor` with
  ``submit_and_wait``. Pytest fixtures live in :mod:`reactor.testing.fixtures`.
"""

from typing import Any

from reactor.testing.double.server import DoubleNotRunning, MongoDouble
from reactor.testing.double.versions import UnknownServerVersion

__all__ = [
    "DoubleNotRunning",
    "MongoDouble",
    "RunningReactor",
    "UnknownServerVersion",
    "running_reactor",
]


def __getattr__(name: str) -> Any:
    # The harness imports the whole reactor; load it only when asked for.
    if name in ("running_reactor", "RunningReactor"):
        from reactor.testing import harness

        return getattr(harness, name)
    raise AttributeError(f"module 'reactor.testing' has no attribute {name!r}")
