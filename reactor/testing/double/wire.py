"""The message codec: OP_MSG both ways, the legacy OP_QUERY command in and OP_REPLY out."""

from __future__ import annotations

import asyncio
import itertools
import struct
from dataclasses import dataclass

import bson
from bson.errors import BSONError

from reactor.errors import ReactorError
from reactor.testing.double.replies import Doc

OP_REPLY = 1
OP_QUERY = 2004
OP_MSG = 2013
MAX_MESSAGE_BYTES = 48_000_000

_HEADER = struct.Struct("<iiii")
_INT32 = struct.Struct("<i")
_UINT32 = struct.Struct("<I")
_CHECKSUM_PRESENT = 1
_MORE_TO_COME = 1 << 1
_EXHAUST_ALLOWED = 1 << 16
_REPLY_HEADER = struct.Struct("<iqii")
_request_ids = itertools.count(1)


class MalformedMessage(ReactorError):
    """A client sent bytes the double cannot parse; its connection is closed."""


@dataclass(frozen=True)
class Request:
    """One decoded command from a client."""

    request_id: int
    op_code: int
    body: Doc
    more_to_come: bool = False
    exhaust_allowed: bool = False


async def read_request(reader: asyncio.StreamReader) -> Request | None:
    """The next request on the stream, or None at a clean end of stream."""
    try:
        header = await reader.readexactly(_HEADER.size)
    except asyncio.IncompleteReadError as exc:
        if exc.partial:
            raise MalformedMessage("truncated message header") from exc
        return None
    length, request_id, _, op_code = _HEADER.unpack(header)
    if not _HEADER.size < length <= MAX_MESSAGE_BYTES:
        raise MalformedMessage(f"bad message length {length}")
    payload = await reader.readexactly(length - _HEADER.size)
    try:
        if op_code == OP_MSG:
            body, flags = decode_msg(payload)
            more_to_come, exhaust = bool(flags & _MORE_TO_COME), bool(flags & _EXHAUST_ALLOWED)
            return Request(request_id, op_code, body, more_to_come, exhaust)
        if op_code == OP_QUERY:
            return Request(request_id, op_code, decode_query(payload))
    except (BSONError, struct.error, IndexError, ValueError) as exc:
        raise MalformedMessage(f"cannot decode message: {exc}") from exc
    raise MalformedMessage(f"unsupported opcode {op_code}")


def decode_msg(payload: bytes) -> tuple[Doc, int]:
    """An OP_MSG's command, its document sequences merged in as arrays, and its flag bits."""
    (flags,) = _UINT32.unpack_from(payload)
    end = len(payload) - (4 if flags & _CHECKSUM_PRESENT else 0)
    position, body, sequences = 4, None, {}
    while position < end:
        kind = payload[position]
        (size,) = _INT32.unpack_from(payload, position + 1)
        section = payload[position + 1 : position + 1 + size]
        if size < 5 or len(section) != size:
            raise MalformedMessage("bad section size")
        if kind == 0 and body is None:
            body = bson.decode(section)
        elif kind == 1:
            name, _, docs = section[4:].partition(b"\x00")
            sequences[name.decode()] = bson.decode_all(docs)
        else:
            raise MalformedMessage(f"unexpected OP_MSG section kind {kind}")
        position += 1 + size
    if body is None:
        raise MalformedMessage("OP_MSG without a body section")
    body.update(sequences)
    return body, int(flags)


def decode_query(payload: bytes) -> Doc:
    """A legacy OP_QUERY on ``<db>.$cmd`` as a command document carrying ``$db``."""
    namespace, _, rest = payload[4:].partition(b"\x00")
    database, _, collection = namespace.decode().partition(".")
    if collection != "$cmd":
        raise MalformedMessage(f"legacy OP_QUERY on {namespace!r} is not a command")
    (size,) = _INT32.unpack_from(rest, 8)
    query = bson.decode(rest[8 : 8 + size])
    body = query.get("$query", query) if isinstance(query.get("$query"), dict) else query
    return {**body, "$db": database}


def encode_reply(request: Request, reply: Doc, *, more_to_come: bool = False) -> bytes:
    """The reply to ``request``: OP_MSG for OP_MSG, OP_REPLY for a legacy OP_QUERY.

    ``more_to_come`` (OP_MSG only) tells the client that more replies follow without a request:
    how an exhaust cursor streams its batches.
    """
    document = bson.encode(reply)
    if request.op_code == OP_QUERY:
        payload = _REPLY_HEADER.pack(0, 0, 0, 1) + document
        op_code = OP_REPLY
    else:
        flags = _MORE_TO_COME if more_to_come else 0
        payload = _UINT32.pack(flags) + b"\x00" + document
        op_code = OP_MSG
    length = _HEADER.size + len(payload)
    return _HEADER.pack(length, next(_request_ids), request.request_id, op_code) + payload
