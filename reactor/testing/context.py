"""What a command handler sees: the shared backend, the database and connection it runs for."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import mongomock
from bson.objectid import ObjectId

from reactor.testing.cursors import CursorTable
from reactor.testing.events import EventLog
from reactor.testing.fastpath import accelerate
from reactor.testing.faults import Faults
from reactor.testing.lookup import by_id
from reactor.testing.replies import CommandFailed, Doc
from reactor.testing.tokens import Clock


@dataclass
class Backend:
    """Everything one double serves from; touched only on the double's event loop."""

    replica_set: str
    address: str  # "host:port" as advertised in hello
    client: Any = field(default_factory=mongomock.MongoClient)
    clock: Clock = field(default_factory=Clock)
    cursors: CursorTable = field(default_factory=CursorTable)
    faults: Faults = field(default_factory=Faults)
    election_id: ObjectId = field(default_factory=ObjectId)
    log: EventLog = field(init=False)

    def __post_init__(self) -> None:
        self.log = EventLog(self.clock)

    def collection_names(self, db: str) -> list[str]:
        return list(self.client[db].list_collection_names())

    def lookup(self, db: str, coll: str, doc_id: Any) -> Doc | None:
        return by_id(self.client[db][coll], doc_id)


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

    def collection(self, cmd: Doc, key: str) -> Any:
        name = cmd.get(key)
        if not isinstance(name, str) or not name:
            raise CommandFailed(73, f"invalid collection name: {name!r}")
        return accelerate(self.backend.client[self.db][name])


Handler = Callable[[Context, Doc], Awaitable[Doc]]
COMMANDS: dict[str, Handler] = {}


def command(*names: str) -> Callable[[Handler], Handler]:
    """Register a handler under command names (matched case-sensitively, as MongoDB does)."""

    def register(handler: Handler) -> Handler:
        for name in names:
            COMMANDS[name] = handler
        return handler

    return register
