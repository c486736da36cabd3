"""The test suite, a package so that its helpers import by one dotted name everywhere.

Every folder is a package: ``tests.integration.jobs_lib`` is the same module in this process, in
the CPU pool's spawned workers (which unpickle handlers by that name) and in child processes given
the repository root on ``PYTHONPATH``. Test modules are ``tests.<folder>.<name>``, so basenames may
repeat across folders.
"""
