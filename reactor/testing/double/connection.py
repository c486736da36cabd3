"""One client connection: read a request, run it, write the reply, until either side stops.

A ``getMore`` sent with ``exhaustAllowed`` on a query cursor streams the rest of the cursor:
each reply but the last carries ``moreToCome``, and the next batch follows without a request,
as MongoDB serves exhaust cursors.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools

from bson.errors import BSONError

from reactor.testing.double.context import Backend
from reactor.testing.double.cursors import QueryCursor
from reactor.testing.double.dispatch import finish, run_command
from reactor.testing.double.replies import Doc, error_reply
from reactor.testing.double.wire import MalformedMessage, Request, encode_reply, read_request


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
            while reply is not None and not request.more_to_come:
                follow_up = _exhaust_follow_up(backend, request, reply)
                writer.write(_encode(request, reply, more_to_come=follow_up is not None))
                await writer.drain()
                if follow_up is None:
                    break
                reply = await run_command(backend, follow_up, connection_id)
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


def _exhaust_follow_up(backend: Backend, request: Request, reply: Doc) -> Doc | None:
    """The getMore an exhaust cursor streams next after ``reply``, or None when it is done."""
    body = request.body
    if not request.exhaust_allowed or next(iter(body), None) != "getMore":
        return None
    cursor = reply.get("cursor")
    cursor_id = cursor.get("id") if reply.get("ok") and isinstance(cursor, dict) else 0
    if not cursor_id or not isinstance(backend.cursors.find(cursor_id), QueryCursor):
        return None
    return {**body, "getMore": cursor_id}


def _encode(request: Request, reply: dict[str, object], *, more_to_come: bool = False) -> bytes:
    try:
        return encode_reply(request, reply, more_to_come=more_to_come)
    except (BSONError, TypeError, ValueError, OverflowError) as exc:
        failure = error_reply(1, f"test double cannot encode its reply: {exc}")
        failure["operationTime"] = reply.get("operationTime")
        return encode_reply(request, failure)
