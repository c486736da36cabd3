"""Connecting to MongoDB at startup: bounded in time, with a message that says what to do."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from pymongo import AsyncMongoClient
from pymongo.errors import ConfigurationError, ConnectionFailure, OperationFailure

from reactor.clock import ServerClock
from reactor.config import Settings
from reactor.errors import ConfigError


def redact(uri: str) -> str:
    """The URI without its password, for messages and logs."""
    return re.sub(r"://([^:/@]+):([^@]+)@", r"://\1:***@", uri)


def make_client(
    settings: Settings, listeners: Sequence[Any] = ()
) -> AsyncMongoClient[dict[str, Any]]:
    """A client whose server selection gives up after ``connect_timeout_s``."""
    try:
        return AsyncMongoClient(
            settings.mongo_uri,
            tz_aware=True,
            appname="mongo-reactor",
            serverSelectionTimeoutMS=int(settings.connect_timeout_s * 1000),
            event_listeners=list(listeners),
        )
    except ConfigurationError as exc:  # includes InvalidURI
        raise ConfigError(
            f"REACTOR_MONGO_URI={redact(settings.mongo_uri)!r} is invalid: {exc}"
        ) from None


async def connect(
    settings: Settings, listeners: Sequence[Any] = (), clock: ServerClock | None = None
) -> AsyncMongoClient[dict[str, Any]]:
    """Connect and check that the server is a replica set (change streams need one); the first
    hello's ``localTime`` gives ``clock`` its first reading."""
    client = make_client(settings, listeners)
    try:
        sent = datetime.now(UTC)
        hello = await client.admin.command("hello")
        if clock is not None:
            clock.observe_hello(hello, sent=sent, received=datetime.now(UTC))
    except (ConnectionFailure, OperationFailure, ConfigurationError) as exc:
        await client.close()
        raise ConfigError(
            f"cannot reach MongoDB at {redact(settings.mongo_uri)} within "
            f"{settings.connect_timeout_s:g} s ({type(exc).__name__}). Start MongoDB as a replica "
            "set, or point REACTOR_MONGO_URI (--mongo-uri) at one; for a local try, run "
            "`reactor dev-mongo` and use the URI it prints."
        ) from None
    if "setName" not in hello and hello.get("msg") != "isdbgrid":
        await client.close()
        raise ConfigError(
            f"MongoDB at {redact(settings.mongo_uri)} is a standalone server, and change streams "
            "need a replica set: start mongod with --replSet rs0 and run rs.initiate() once."
        )
    return client
