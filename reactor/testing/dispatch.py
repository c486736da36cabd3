"""One command in, one reply out: injected faults, refusals, the handler, errors as replies."""

from __future__ import annotations

from reactor.testing import admin, diagnostics, find_modify, indexes, reads, writes
from reactor.testing.context import COMMANDS, Backend, Context
from reactor.testing.replies import CommandFailed, Doc, error_code, error_reply

# Importing the handler modules registers their commands.
HANDLER_MODULES = (admin, diagnostics, find_modify, indexes, reads, writes)

_TRANSACTION_COMMANDS = frozenset({"commitTransaction", "abortTransaction"})


async def run_command(backend: Backend, body: Doc, connection_id: int) -> Doc:
    """The reply document for ``body``; never raises for anything a client can send."""
    reply = await _answer(backend, body, connection_id)
    reply.setdefault("ok", 1.0)
    reply["operationTime"] = backend.clock.now
    return reply


async def _answer(backend: Backend, body: Doc, connection_id: int) -> Doc:
    if not body:
        return error_reply(9, "empty command document")
    name = next(iter(body))
    db = body.get("$db")
    if not isinstance(db, str) or not db:
        return error_reply(40571, "OP_MSG requests require a $db argument")
    injected = backend.faults.take_failure(name)
    if injected is not None:
        return injected
    if body.get("startTransaction") or "autocommit" in body or name in _TRANSACTION_COMMANDS:
        return error_reply(20, "transactions are not supported by the test double")
    handler = COMMANDS.get(name)
    if handler is None:
        message = f"no such command: '{name}' (not supported by the mongo-reactor test double)"
        return error_reply(59, message)
    return await _run(handler, Context(backend, db, connection_id), body)


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
