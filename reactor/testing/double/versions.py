"""The MongoDB release the double says it is, and what that release decides.

A driver learns a server's capabilities from ``maxWireVersion`` in ``hello`` (PyMongo refuses
``MongoClient.bulk_write`` below 25) and a test harness from ``buildInfo``'s ``versionArray``, so
the two must name the same release: 8.0 is wire version 25, 7.0 is 21. The double's engine is the
same for every release; only what the table below gates differs (``bulkWrite`` is new in 8.0: a
7.0 server answers it 59 ``CommandNotFound``). ``MongoDouble(server_version="7.0")`` serves as a
7.0 primary, to test what a client does with an older server.
"""

from __future__ import annotations

from dataclasses import dataclass

from reactor.errors import ReactorError

DEFAULT_SERVER_VERSION = "8.0"

# The release each command first appeared in; commands not listed exist in every release.
_COMMANDS_SINCE: dict[str, tuple[int, int]] = {"bulkWrite": (8, 0)}


class UnknownServerVersion(ReactorError):
    """``MongoDouble(server_version=...)`` names a release the double cannot pose as."""


@dataclass(frozen=True)
class ServerVersion:
    """One MongoDB release: its number and the wire version its ``hello`` reports."""

    major: int
    minor: int
    max_wire_version: int

    @property
    def feature_compatibility(self) -> str:
        """``featureCompatibilityVersion`` as ``getParameter`` reports it (``"8.0"``)."""
        return f"{self.major}.{self.minor}"

    @property
    def version(self) -> str:
        """The ``version`` string of ``buildInfo`` and ``serverStatus``."""
        return f"{self.major}.{self.minor}.0-double"

    @property
    def version_array(self) -> list[int]:
        return [self.major, self.minor, 0, 0]

    def offers(self, command: str) -> bool:
        """Whether this release has ``command`` (the double answers it 59 otherwise)."""
        return (self.major, self.minor) >= _COMMANDS_SINCE.get(command, (0, 0))


SERVER_VERSIONS: dict[str, ServerVersion] = {
    "7.0": ServerVersion(7, 0, max_wire_version=21),
    "8.0": ServerVersion(8, 0, max_wire_version=25),
}


def server_version(name: str) -> ServerVersion:
    """The release called ``name`` (``"8.0"``, ``"7.0"``); UnknownServerVersion for others."""
    found = SERVER_VERSIONS.get(name)
    if found is None:
        known = ", ".join(sorted(SERVER_VERSIONS))
        raise UnknownServerVersion(f"the double can pose as MongoDB {known}, not {name!r}")
    return found
