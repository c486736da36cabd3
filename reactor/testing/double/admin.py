"""Handshake, server information, sessions, and database/collection administration."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from bson.binary import Binary

from reactor.testing.double import collmod
from reactor.testing.double.context import Context, command
from reactor.testing.double.cursors import first_batch
from reactor.testing.double.ddl_events import record_create
from reactor.testing.double.engine.collection import Collection
from reactor.testing.double.engine.matcher import compile_filter
from reactor.testing.double.replies import CommandFailed, Doc, not_supported

MAX_BSON_BYTES = 16 * 1024 * 1024
MAX_MESSAGE_BYTES = 48_000_000
_UNSUPPORTED_CREATE_OPTIONS = ("capped", "validator", "timeseries", "clusteredIndex", "viewOn")


@command("hello", "isMaster", "ismaster")
async def hello(ctx: Context, cmd: Doc) -> Doc:
    backend = ctx.backend
    reply: Doc = {
        "isWritablePrimary": True,
        "ismaster": True,
        "secondary": False,
        "setName": backend.replica_set,
        "setVersion": 1,
        "hosts": [backend.address],
        "primary": backend.address,
        "me": backend.address,
        "electionId": backend.election_id,
        "maxBsonObjectSize": MAX_BSON_BYTES,
        "maxMessageSizeBytes": MAX_MESSAGE_BYTES,
        "maxWriteBatchSize": 100_000,
        "localTime": dt.datetime.now(dt.UTC).replace(tzinfo=None),
        "logicalSessionTimeoutMinutes": 30,
        "connectionId": ctx.connection_id,
        "minWireVersion": 0,
        "maxWireVersion": backend.server.max_wire_version,
        "readOnly": False,
    }
    if cmd.get("helloOk"):
        reply["helloOk"] = True
    return reply


@command("ping", "endSessions", "killSessions", "killAllSessions", "refreshSessions")
async def ping(ctx: Context, cmd: Doc) -> Doc:
    return {}


@command("buildInfo", "buildinfo")
async def build_info(ctx: Context, cmd: Doc) -> Doc:
    server = ctx.backend.server
    return {
        "version": server.version,
        "versionArray": server.version_array,
        "gitVersion": "mongo-reactor-test-double",
        "bits": 64,
        "maxBsonObjectSize": MAX_BSON_BYTES,
        "storageEngines": ["mongo-reactor-double"],
    }


@command("getParameter")
async def get_parameter(ctx: Context, cmd: Doc) -> Doc:
    fcv = {"version": ctx.backend.server.feature_compatibility}
    known: Doc = {"featureCompatibilityVersion": fcv, "enableTestCommands": False}
    if cmd.get("getParameter") == "*":
        return dict(known)
    return {name: value for name, value in known.items() if name in cmd}


# A replica-set member always holds these (system.version, config.system.sessions, the oplog).
SYSTEM_DATABASES = ("admin", "config", "local")
_UNDROPPABLE = {
    "admin": "Dropping the 'admin' database is prohibited.",
    "local": "Cannot drop 'local' database while replication is active",
}


@command("listDatabases")
async def list_databases(ctx: Context, cmd: Doc) -> Doc:
    names = sorted({*SYSTEM_DATABASES, *ctx.backend.catalog.database_names()})
    infos = [{"name": name, "sizeOnDisk": 0, "empty": False} for name in names]
    infos = [info for info in infos if compile_filter(cmd.get("filter") or {})(info)]
    if cmd.get("nameOnly"):
        return {"databases": [{"name": info["name"]} for info in infos]}
    return {"databases": infos, "totalSize": 0}


@command("dropDatabase")
async def drop_database(ctx: Context, cmd: Doc) -> Doc:
    if ctx.db in _UNDROPPABLE:
        raise CommandFailed(20, _UNDROPPABLE[ctx.db])
    backend = ctx.backend
    for name in backend.catalog.drop_database(ctx.db):
        backend.log.record("drop", ctx.db, name)
    backend.log.record("dropDatabase", ctx.db, None)
    return {"dropped": ctx.db}


@command("listCollections")
async def list_collections(ctx: Context, cmd: Doc) -> Doc:
    catalog = ctx.backend.catalog
    infos = [
        _collection_info(catalog.get(ctx.db, name), ctx.backend.log.collection_uuid(ctx.db, name))
        for name in sorted(catalog.collection_names(ctx.db))
    ]
    infos = [info for info in infos if compile_filter(cmd.get("filter") or {})(info)]
    if cmd.get("nameOnly"):
        infos = [{"name": info["name"], "type": info["type"]} for info in infos]
    namespace = f"{ctx.db}.$cmd.listCollections"
    return first_batch(ctx.backend.cursors, namespace, infos, _batch_size(cmd))


def _collection_info(coll: Collection | None, ident: uuid.UUID) -> Doc:
    """A listCollections entry; ``info.uuid`` is the one change events carry as collectionUUID."""
    assert coll is not None
    return {
        "name": coll.name,
        "type": "collection",
        "options": dict(coll.options),
        "info": {"readOnly": False, "uuid": Binary.from_uuid(ident)},
        "idIndex": {"v": 2, "key": {"_id": 1}, "name": "_id_"},
    }


def _batch_size(cmd: Doc) -> int | None:
    cursor: Any = cmd.get("cursor") or {}
    size = cursor.get("batchSize") if isinstance(cursor, dict) else None
    return size if isinstance(size, int) else None


_IGNORED_CREATE_OPTIONS = {
    "create",
    "$db",
    "lsid",
    "$clusterTime",
    "writeConcern",
    "comment",
    "$readPreference",
}


@command("create")
async def create(ctx: Context, cmd: Doc) -> Doc:
    for option in _UNSUPPORTED_CREATE_OPTIONS:
        if cmd.get(option):
            raise not_supported(f"create with {option}")
    name = ctx.name(cmd, "create")
    options = {
        k: v
        for k, v in cmd.items()
        if k not in _IGNORED_CREATE_OPTIONS and k not in _UNSUPPORTED_CREATE_OPTIONS
    }
    images = collmod.images_option(cmd[collmod.IMAGES]) if collmod.IMAGES in cmd else False
    ctx.backend.catalog.create(ctx.db, name, options)
    ctx.backend.log.set_images(ctx.db, name, enabled=images)
    record_create(ctx, name)
    return {}


@command("drop")
async def drop(ctx: Context, cmd: Doc) -> Doc:
    name = ctx.name(cmd, "drop")
    coll = ctx.backend.catalog.drop(ctx.db, name)
    if coll is None:
        return {}
    ctx.backend.log.record("drop", ctx.db, name)
    return {"ns": coll.namespace, "nIndexesWas": len(coll.indexes)}
