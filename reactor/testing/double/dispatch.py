"""One command in, one reply out: injected faults, refusals, the handler, errors as replies."""

from __future__ import annotations

from collections.abc import Callable

from bson.binary import Binary
from bson.int64 import Int64

from reactor.testing.double import (
    admin,
    aggregate,
    bulk_write,
    collmod,
    diagnostics,
    find_modify,
    indexes,
    reads,
    rename,
    writes,
)
from reactor.testing.double.changestream import ChangeStream
from reactor.testing.double.context import ANSWERED, COMMANDS, Backend, Context
from reactor.testing.double.labels import with_server_labels
from reactor.testing.double.replies import CommandFailed, Doc, error_code, error_reply
from reactor.testing.double.write_concern import write_concern_error

# Importing the handler modules registers their commands.
HANDLER_MODULES = (
    admin,
    aggregate,
    bulk_write,
    collmod,
    diagnostics,
    find_modify,
    indexes,
    reads,
    rename,
    writes,
)

_TRANSACTION_COMMANDS = frozenset({"commitTransaction", "abortTransaction"})
_NO_SIGNATURE: Doc = {"hash": Binary(bytes(20)), "keyId": Int64(0)}


async def run_command(
    backend: Backend,
    body: Doc,
    connection_id: int,
    respond_now: Callable[[Doc], None] | None = None,
) -> Doc | None:
    """The reply document for ``body`` (None: sent already through ``respond_now``).

    Never raises for anything a client can send.
    """
    reply = await _answer(backend, body, Context(backend, "", connection_id, respond_now))
    return None if reply is ANSWERED else finish(backend, reply)


def finish(backend: Backend, reply: Doc) -> Doc:
    """``reply`` with the fields every replica-set reply carries: ``ok``, the times.

    ``$clusterTime`` has MongoDB's shape with a zero signature (the double runs without keys),
    so drivers gossip it and causally consistent sessions work.
    """
    reply.setdefault("ok", 1.0)
    now = backend.clock.now
    reply["$clusterTime"] = {"clusterTime": now, "signature": _NO_SIGNATURE}
    reply["operationTime"] = now
    return reply


async def _answer(backend: Backend, body: Doc, ctx: Context) -> Doc:
    if not body:
        return error_reply(9, "empty command document")
    name = next(iter(body))
    db = body.get("$db")
    if not isinstance(db, str) or not db:
        return error_reply(40571, "OP_MSG requests require a $db argument")
    change_stream = _is_change_stream(backend, name, body)
    target = body.get(name)
    injected = backend.faults.take_failure(name, target if isinstance(target, str) else None)
    if injected is not None:
        reply = error_reply(injected.code, injected.message, injected.labels or ())
        if injected.labels is None:  # as MongoDB labels it; given labels replace the server's
            with_server_labels(reply, change_stream=change_stream)
        return reply
    if body.get("startTransaction") or "autocommit" in body or name in _TRANSACTION_COMMANDS:
        return error_reply(20, "transactions are not supported by the test double")
    refusal = _refusal(name, db, body)
    if refusal is not None:
        return error_reply(238, f"{refusal} is not supported by the mongo-reactor test double")
    handler = COMMANDS.get(name)
    if handler is None:
        message = f"no such command: '{name}' (not supported by the mongo-reactor test double)"
        return error_reply(59, message)
    if not backend.server.offers(name):  # newer than the release the double poses as
        return error_reply(59, f"no such command: '{name}'")
    ctx.db = db
    reply = await _run_retryable(handler, ctx, name, body)
    if reply is ANSWERED:
        return reply
    if not reply.get("ok", 1):
        if change_stream and name == "getMore":  # MongoDB kills a cursor whose getMore failed
            backend.cursors.discard(body["getMore"])
        with_server_labels(reply, change_stream=change_stream)
    elif (concern_error := write_concern_error(body)) is not None:
        reply["writeConcernError"] = concern_error
    return reply


async def _run_retryable(handler: object, ctx: Context, name: str, body: Doc) -> Doc:
    """Run the handler, or answer a retried write from the outcome recorded for it."""
    key = ctx.backend.retryable.key(name, body)
    if key is None:
        return await _run(handler, ctx, body)
    try:
        recorded = ctx.backend.retryable.recall(key)
    except CommandFailed as exc:
        return exc.reply()
    if recorded is not None:
        return recorded
    reply = await _run(handler, ctx, body)
    if reply is not ANSWERED:
        ctx.backend.retryable.remember(key, reply if "ok" in reply else {"ok": 1.0, **reply})
    return reply


def _refusal(name: str, db: str, body: Doc) -> str | None:
    """What in ``body`` the double refuses outright, rather than answering unlike MongoDB."""
    concern = body.get("readConcern")
    if isinstance(concern, dict) and concern.get("level") == "snapshot":
        return "readConcern level 'snapshot'"
    if db == "local" and body.get(name) == "oplog.rs":
        return "reading local.oplog.rs (the double keeps no oplog)"
    return None


def _is_change_stream(backend: Backend, name: str, body: Doc) -> bool:
    """Whether ``body`` opens a change stream or asks one for more."""
    if name == "aggregate":
        pipeline = body.get("pipeline")
        first = pipeline[0] if isinstance(pipeline, list) and pipeline else None
        return isinstance(first, dict) and "$changeStream" in first
    if name == "getMore":
        return isinstance(backend.cursors.find(body.get("getMore")), ChangeStream)
    return False


async def _run(handler: object, ctx: Context, body: Doc) -> Doc:
    assert callable(handler)
    try:
        reply: Doc = await handler(ctx, body)
    except CommandFailed as exc:
        return exc.reply()  # keeps its error labels
    except Exception as exc:
        known = error_code(exc)
        if known is None:  # a bug in the double: answer it rather than drop the connection
            return error_reply(1, f"test double internal error: {type(exc).__name__}: {exc}")
        return error_reply(*known)
    return reply
