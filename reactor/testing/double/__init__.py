"""The MongoDB wire-protocol double: a one-member replica set that real PyMongo clients talk to.

:class:`~reactor.testing.double.server.MongoDouble` serves it (also exported as
``reactor.testing.MongoDouble``). The wire layer (``wire``, ``connection``, ``dispatch``,
``replies``) speaks OP_MSG; the command modules (``reads``, ``writes``, ``find_modify``,
``admin``, ``indexes``, ``changestream``, ...) answer commands as MongoDB does; the storage
engine with its indexes and query planner lives in :mod:`reactor.testing.double.engine`.
docs/testing-double.md describes its fidelity and every known divergence.
"""
