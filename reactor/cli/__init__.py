"""The ``reactor`` command: ``main`` (the console script), its parser, and its subcommands.

- :mod:`reactor.cli.main`: the parser, ``reactor run`` and the small commands;
- :mod:`reactor.cli.jobs`: ``submit``, ``status``, ``cancel``, ``retry``, ``list``;
- :mod:`reactor.cli.migrate`: ``migrate --check`` / ``--apply``;
- :mod:`reactor.cli.support`: settings flags, exit codes, connecting, JSON output.
"""

from reactor.cli.main import build_parser, main, reactor_error

__all__ = ["build_parser", "main", "reactor_error"]
