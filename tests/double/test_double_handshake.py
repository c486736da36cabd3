"""The double's handshake, wire handling and refusals, seen through real PyMongo clients."""

from __future__ import annotations

import asyncio
import socket
import struct
import subprocess
import sys
import threading
from typing import Any

import bson
import pytest
from pymongo import AsyncMongoClient, MongoClient, WriteConcern
from pymongo.errors import OperationFailure

from reactor.testing import DoubleNotRunning, MongoDouble
from reactor.testing.fixtures import mongo_double, mongo_uri

__all__ = ["mongo_double", "mongo_uri"]  # fixtures used by name below

Doc = dict[str, Any]


async def test_async_client_sees_a_replica_set_primary(
    client: AsyncMongoClient[Doc], mongo_double: MongoDouble
) -> None:
    """An AsyncMongoClient discovers the double as the writable primary of replica set rs0."""
    await client.admin.command("ping")
    assert await client.primary == ("127.0.0.1", mongo_double.port)
    description = client.topology_description
    assert description.topology_type_name == "ReplicaSetWithPrimary"
    assert description.replica_set_name == "rs0"


async def test_hello_reply_shape(client: AsyncMongoClient[Doc], mongo_double: MongoDouble) -> None:
    """hello answers as a primary, honours helloOk and leaves out topologyVersion."""
    reply = await client.admin.command({"hello": 1, "helloOk": True})
    address = f"127.0.0.1:{mongo_double.port}"
    assert reply["isWritablePrimary"] is True
    assert reply["setName"] == "rs0"
    assert reply["hosts"] == [address]
    assert reply["primary"] == reply["me"] == address
    assert reply["helloOk"] is True
    assert reply["maxWireVersion"] == 25  # MongoDB 8.0
    assert "topologyVersion" not in reply
    assert isinstance(reply["operationTime"], bson.Timestamp)
    assert reply["$clusterTime"]["clusterTime"] == reply["operationTime"]


async def test_sessions_gossip_the_cluster_time(client: AsyncMongoClient[Doc]) -> None:
    """A session learns $clusterTime and operationTime from replies, for causal consistency."""
    async with client.start_session(causal_consistency=True) as session:
        await client.app.jobs.insert_one({"_id": 1}, session=session)
        assert session.cluster_time is not None
        assert session.operation_time == session.cluster_time["clusterTime"]
        assert await client.app.jobs.find_one({"_id": 1}, session=session) == {"_id": 1}


def test_sync_client_handshake_and_round_trip(mongo_uri: str) -> None:
    """The synchronous MongoClient connects, writes and reads back a document."""
    with MongoClient[Doc](mongo_uri, serverSelectionTimeoutMS=5000) as client:
        client.app.things.insert_one({"_id": "a", "n": 1})
        assert client.app.things.find_one({"_id": "a"}) == {"_id": "a", "n": 1}
        assert client.is_primary


def _op_query(request_id: int, namespace: str, query: Doc) -> bytes:
    body = struct.pack("<i", 0) + namespace.encode() + b"\x00" + struct.pack("<ii", 0, -1)
    body += bson.encode(query)
    return struct.pack("<iiii", 16 + len(body), request_id, 0, 2004) + body


def _recv_exactly(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        assert chunk, "connection closed early"
        data += chunk
    return data


def test_legacy_op_query_handshake_gets_op_reply(mongo_double: MongoDouble) -> None:
    """A legacy OP_QUERY isMaster on admin.$cmd is answered with a one-document OP_REPLY."""
    with socket.create_connection(("127.0.0.1", mongo_double.port), timeout=5) as sock:
        sock.sendall(_op_query(7, "admin.$cmd", {"isMaster": 1, "helloOk": True}))
        length, _, response_to, op_code = struct.unpack("<iiii", _recv_exactly(sock, 16))
        payload = _recv_exactly(sock, length - 16)
    _flags, cursor_id, _start, returned = struct.unpack("<iqii", payload[:20])
    reply = bson.decode(payload[20:])
    assert (op_code, response_to, cursor_id, returned) == (1, 7, 0, 1)
    assert reply["ismaster"] is True
    assert reply["setName"] == "rs0"
    assert reply["helloOk"] is True


async def test_malformed_message_closes_only_that_connection(
    client: AsyncMongoClient[Doc], mongo_double: MongoDouble
) -> None:
    """Garbage on one socket closes that socket while other clients keep working."""
    await client.admin.command("ping")
    reader, writer = await asyncio.open_connection("127.0.0.1", mongo_double.port)
    writer.write(struct.pack("<iiii", 3, 1, 0, 2013))
    assert await asyncio.wait_for(reader.read(), 5) == b""
    writer.close()
    await writer.wait_closed()
    assert (await client.admin.command("ping"))["ok"] == 1.0


async def test_unsupported_command_answers_command_not_found(
    client: AsyncMongoClient[Doc],
) -> None:
    """A command the double lacks fails at once with code 59 CommandNotFound, naming the double."""
    with pytest.raises(OperationFailure) as caught:
        await asyncio.wait_for(client.admin.command("replSetGetStatus"), 2)
    assert caught.value.code == 59
    assert caught.value.details is not None
    assert caught.value.details["codeName"] == "CommandNotFound"
    assert "test double" in str(caught.value)


async def test_transactions_are_refused(client: AsyncMongoClient[Doc]) -> None:
    """A write inside a transaction fails with code 20 IllegalOperation."""
    async with client.start_session() as session:
        await session.start_transaction()
        with pytest.raises(OperationFailure) as caught:
            await client.app.things.insert_one({"x": 1}, session=session)
        assert caught.value.code == 20
        await session.abort_transaction()


def test_fault_hooks_need_a_running_double() -> None:
    """Fault hooks on a double that was never started raise DoubleNotRunning."""
    double = MongoDouble()
    with pytest.raises(DoubleNotRunning):
        double.drop_connections()
    double.stop()


def test_binding_a_taken_port_fails_at_start(mongo_double: MongoDouble) -> None:
    """start() raises the bind error instead of hanging when the port is taken."""
    with pytest.raises(OSError, match="ddress already in use"):
        MongoDouble(port=mongo_double.port).start()


async def test_unacknowledged_write_gets_no_reply_and_is_applied(
    client: AsyncMongoClient[Doc],
) -> None:
    """A w:0 insert (moreToCome) is applied although the double sends no reply."""
    jobs = client.app.jobs
    async with await jobs.watch() as stream:
        fire_and_forget = jobs.with_options(write_concern=WriteConcern(w=0))
        await fire_and_forget.insert_one({"_id": "w0"})
        event = await stream.next()
    assert event["documentKey"] == {"_id": "w0"}


def _op_msg(request_id: int, body: Doc, *, checksum: bool) -> bytes:
    flags = 1 if checksum else 0
    payload = struct.pack("<I", flags) + b"\x00" + bson.encode(body)
    if checksum:
        payload += b"\x00\x00\x00\x00"
    return struct.pack("<iiii", 16 + len(payload), request_id, 0, 2013) + payload


def test_op_msg_with_checksum_and_document_sequence(mongo_double: MongoDouble) -> None:
    """checksumPresent is accepted, and a kind-1 section becomes the command's array field."""
    docs = b"".join(bson.encode({"_id": i}) for i in range(2))
    ident = b"documents\x00"
    sequence = b"\x01" + struct.pack("<i", 4 + len(ident) + len(docs)) + ident + docs
    body = bson.encode({"insert": "raw", "$db": "app"})
    payload = struct.pack("<I", 0) + b"\x00" + body + sequence
    insert = struct.pack("<iiii", 16 + len(payload), 1, 0, 2013) + payload
    with socket.create_connection(("127.0.0.1", mongo_double.port), timeout=5) as sock:
        sock.sendall(insert)
        inserted = _read_op_msg(sock)
        sock.sendall(_op_msg(2, {"count": "raw", "$db": "app"}, checksum=True))
        counted = _read_op_msg(sock)
    assert inserted["n"] == 2
    assert counted["n"] == 2


def _read_op_msg(sock: socket.socket) -> Doc:
    length, _, _, op_code = struct.unpack("<iiii", _recv_exactly(sock, 16))
    payload = _recv_exactly(sock, length - 16)
    assert op_code == 2013
    return bson.decode(payload[5:])


def test_serve_forever_until_stopped_from_another_thread() -> None:
    """serve_forever blocks its thread and returns once stop() is called elsewhere."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    double = MongoDouble(port=port)
    server = threading.Thread(target=double.serve_forever)
    server.start()
    with MongoClient[Doc](double.uri, serverSelectionTimeoutMS=5000) as client:
        assert client.admin.command("ping")["ok"] == 1.0
    double.stop()
    server.join(5)
    assert not server.is_alive()


def test_importing_the_double_does_not_import_pytest() -> None:
    """reactor.testing can be imported by non-test code without pulling in pytest."""
    code = "import sys, reactor.testing; sys.exit('pytest' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
