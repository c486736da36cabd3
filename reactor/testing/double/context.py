"""What a command handler sees: the shared backend, the database and connection it runs for."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from bson.objectid import ObjectId

from reactor.testing.double.cursors import CursorTable
from reactor.testing.double.ddl_events import record_create
from reactor.testing.double.engine.catalog import Catalog, check_name
from reactor.testing.double.engine.collection import Collection
from reactor.testing.double.events import EventLog
from reactor.testing.double.faults import Faults
from reactor.testing.double.replies import CommandFailed, Doc
from reactor.testing.double.retryable import RetryableWrites
from reactor.testing.double.tokens import Clock
from reactor.testing.double.versions import DEFAULT_SERVER_VERSION, ServerVersion, server_version


@dataclass
class Backend:
    """Everything one double serves from; touched only on the double's event loop."""

    replica_set: str
    address: str  # "host:port" as advertised in hello
    server: ServerVersion = field(default_factory=lambda: server_version(DEFAULT_SERVER_VERSION))
    catalog: Catalog = field(default_factory=Catalog)
    clock: Clock = field(default_factory=Clock)
    cursors: CursorTable = field(default_factory=CursorTable)
    faults: Faults = field(default_factory=Faults)
    election_id: ObjectId = field(default_factory=ObjectId)
    retryable: RetryableWrites = field(default_factory=RetryableWrites)
    log: EventLog = field(init=False)

    def __post_init__(self) -> None:
        self.log = EventLog(self.clock)

    def collection_names(self, db: str) -> list[str]:
        return self.catalog.collection_names(db)

    def lookup(self, db: str, coll: str, doc_id: Any) -> Doc | None:
        found = self.catalog.get(db, coll)
        return None if found is None else found.by_id(doc_id)


# What a handler returns when it has already sent its reply through ``Context.respond_now``.
ANSWERED: Doc = {"$answered": True}


@dataclass
class Context:
    """One command's surroundings.

    ``respond_now`` writes this command's reply to its connection at once, from whatever
    command is running (a waiting change-stream getMore answers from inside the write that
    produced its event); a handler that used it returns :data:`ANSWERED`.
    """

    backend: Backend
    db: str
    connection_id: int
    respond_now: Callable[[Doc], None] | None = None

    def name(self, cmd: Doc, key: str) -> str:
        """The collection name a command names under ``key`` (73 when it is not a valid one)."""
        name = cmd.get(key)
        if not isinstance(name, str) or not name:
            raise CommandFailed(73, f"invalid collection name: {name!r}")
        check_name(self.db, name)
        return name

    def existing(self, cmd: Doc, key: str) -> Collection | None:
        """The collection the command names, or None if it does not exist (reads)."""
        return self.backend.catalog.get(self.db, self.name(cmd, key))

    def existing_or_empty(self, cmd: Doc, key: str) -> Collection:
        """The collection the command names, or an empty one outside the catalog.

        For writes that must not create a missing collection (updates without upsert,
        deletes): they still validate their statements and match nothing.
        """
        name = self.name(cmd, key)
        found = self.backend.catalog.get(self.db, name)
        return Collection(self.db, name) if found is None else found

    def collection(self, cmd: Doc, key: str) -> Collection:
        """The collection the command names; created if missing, with its ``create`` event."""
        name = self.name(cmd, key)
        found = self.backend.catalog.get(self.db, name)
        if found is None:
            found = self.backend.catalog.ensure(self.db, name)
            record_create(self, name)
        return found

    def record(
        self,
        operation: str,
        coll: Collection,
        before: Doc | None,
        after: Doc | None,
        *,
        update: Any = None,
    ) -> None:
        """Append the change event of one document write (``update``: the update document)."""
        log = self.backend.log
        log.record(operation, self.db, coll.name, before=before, after=after, update=update)


Handler = Callable[[Context, Doc], Awaitable[Doc]]
COMMANDS: dict[str, Handler] = {}


def command(*names: str) -> Callable[[Handler], Handler]:
    """Register a handler under command names (matched case-sensitively, as MongoDB does)."""

    def register(handler: Handler) -> Handler:
        for name in names:
            COMMANDS[name] = handler
        return handler

    return register
