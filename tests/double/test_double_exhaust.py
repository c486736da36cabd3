"""Exhaust cursors: the double streams a cursor's batches with moreToCome, as MongoDB does."""

from __future__ import annotations

import socket
import struct
from typing import Any

import bson
from pymongo import AsyncMongoClient, CursorType

from reactor.testing import MongoDouble

Doc = dict[str, Any]
_EXHAUST_ALLOWED = 1 << 16
_MORE_TO_COME = 1 << 1


def _op_msg(request_id: int, body: Doc, flags: int = 0) -> bytes:
    payload = struct.pack("<I", flags) + b"\x00" + bson.encode(body)
    return struct.pack("<iiii", 16 + len(payload), request_id, 0, 2013) + payload


def _read_reply(sock: socket.socket) -> tuple[int, Doc]:
    """One OP_MSG reply: its flag bits and its body."""
    header = _recv_exactly(sock, 16)
    length = struct.unpack("<i", header[:4])[0]
    payload = _recv_exactly(sock, length - 16)
    return struct.unpack("<I", payload[:4])[0], bson.decode(payload[5:])


def _recv_exactly(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        assert chunk, "connection closed early"
        data += chunk
    return data


async def test_exhaust_cursor_returns_every_document(client: AsyncMongoClient[Doc]) -> None:
    """PyMongo's exhaust cursor reads all 150 documents in order over one pinned connection."""
    await client.app.things.insert_many([{"_id": i} for i in range(150)])
    cursor = client.app.things.find(cursor_type=CursorType.EXHAUST, batch_size=7).sort("_id", 1)
    assert [doc["_id"] async for doc in cursor] == list(range(150))


def test_exhaust_get_more_streams_batches_without_requests(mongo_double: MongoDouble) -> None:
    """One exhaustAllowed getMore gets every remaining batch; only the last lacks moreToCome."""
    with socket.create_connection(("127.0.0.1", mongo_double.port), timeout=5) as sock:
        sock.sendall(
            _op_msg(1, {"insert": "t", "documents": [{"_id": i} for i in range(4)], "$db": "a"})
        )
        _read_reply(sock)
        sock.sendall(_op_msg(2, {"find": "t", "batchSize": 1, "$db": "a"}))
        _, found = _read_reply(sock)
        cursor_id = found["cursor"]["id"]
        get_more = {"getMore": cursor_id, "collection": "t", "batchSize": 1, "$db": "a"}
        sock.sendall(_op_msg(3, get_more, _EXHAUST_ALLOWED))
        replies = [_read_reply(sock) for _ in range(3)]
    flags = [bool(flag & _MORE_TO_COME) for flag, _ in replies]
    ids = [doc["_id"] for _, reply in replies for doc in reply["cursor"]["nextBatch"]]
    assert flags == [True, True, False]
    assert ids == [1, 2, 3]
    assert replies[-1][1]["cursor"]["id"] == 0
