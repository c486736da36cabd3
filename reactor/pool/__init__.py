"""The CPU pool: worker processes that hung or crashing native code cannot wedge.

:class:`CpuPool` (in :mod:`reactor.pool.cpu`) is the public face; the private modules are its
parts: ``_handle`` (one worker process), ``_worker`` (the code a worker runs), ``_protocol`` (what
travels over a worker's pipe), ``_keepalive`` (the lease deadline a task may not outlive),
``_watchdog`` (the process that kills a worker's group when its reactor or deadline is gone) and
``_courier`` (progress reports from a worker to its caller). :class:`NoPool` stands in when
no handler runs in a pool.
"""

from reactor.pool._none import NoPool
from reactor.pool.cpu import RESTART_REASONS, CpuPool, KeepAlive, ProgressCallback

__all__ = ["RESTART_REASONS", "CpuPool", "KeepAlive", "NoPool", "ProgressCallback"]
