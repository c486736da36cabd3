"""One client connection: read a request, run it, write the reply, until either side stops."""

from __future__ import annotations

import asyncio
import contextlib
import functools

from bson.errors import BSONError

from reactor.testing.context import Backend
from reactor.testing.dispatch import finish, run_command
from reactor.testing.replies import Doc, error_reply
from reactor.testing.wire import MalformedMessage, Request, encode_reply, read_request


async def serve_connection(
    backend: Backend,
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    connection_id: int,
) -> None:
    """Serve requests in order; a malformed message or a broken socket closes this connection."""
    try:
        while (request := await read_request(reader)) is not None:
            respond_now = functools.partial(_respond_now, backend, writer, request)
            reply = await run_command(backend, request.body, connection_id, respond_now)
            if reply is not None and not request.more_to_come:
                writer.write(_encode(request, reply))
                await writer.drain()
    except (MalformedMessage, ConnectionError, asyncio.IncompleteReadError):
        pass
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError, asyncio.CancelledError):
            await writer.wait_closed()


def _respond_now(
    backend: Backend, writer: asyncio.StreamWriter, request: Request, reply: Doc
) -> None:
    """Write ``request``'s reply now, from whichever task is running (no await, no drain)."""
    if not request.more_to_come and not writer.is_closing():
        writer.write(_encode(request, finish(backend, reply)))


def _encode(request: Request, reply: dict[str, object]) -> bytes:
    try:
        return encode_reply(request, reply)
    except (BSONError, TypeError, ValueError, OverflowError) as exc:
        failure = error_reply(1, f"test double cannot encode its reply: {exc}")
        failure["operationTime"] = reply.get("operationTime")
        return encode_reply(request, failure)
