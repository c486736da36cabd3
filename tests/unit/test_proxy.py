"""The cuttable TCP proxy: forward, refuse, blackhole, reset, with real sockets and real PyMongo."""

from __future__ import annotations

import contextlib
import gc
import socket
import socketserver
import threading
from collections.abc import Iterator
from typing import Any

import pymongo
import pytest
from pymongo.errors import PyMongoError

from reactor.testing import MongoDouble
from reactor.testing.proxy import Mode, ProxyNotRunning, TcpProxy

WAIT_S = 10.0  # bound for anything that should happen; generous under load
QUIET_S = 0.5  # how long "nothing arrives" is watched


class _Echo(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        server: EchoServer = self.server  # type: ignore[assignment]
        try:
            while data := self.request.recv(4096):
                self.request.sendall(data)
        except ConnectionResetError:
            server.resets.set()


class EchoServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Echo)
        self.resets = threading.Event()


@pytest.fixture
def echo() -> Iterator[EchoServer]:
    server = EchoServer()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(WAIT_S)


@pytest.fixture
def proxy(echo: EchoServer) -> Iterator[TcpProxy]:
    with TcpProxy(*echo.server_address[:2]) as started:
        yield started


def dial(proxy: TcpProxy) -> socket.socket:
    sock = socket.create_connection((proxy.host, proxy.port), timeout=WAIT_S)
    sock.settimeout(WAIT_S)
    return sock


def roundtrip(sock: socket.socket, payload: bytes) -> bytes:
    sock.sendall(payload)
    return receive(sock, len(payload))


def receive(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            break
        data += chunk
    return data


def test_forward_carries_bytes_both_ways(proxy: TcpProxy) -> None:
    """In forward mode a connection through the proxy reaches the upstream and back."""
    with dial(proxy) as sock:
        assert roundtrip(sock, b"hello") == b"hello"
    assert proxy.mode is Mode.FORWARD


def test_refuse_refuses_new_connections_and_resets_open_ones(proxy: TcpProxy) -> None:
    """Refuse resets an open connection, refuses new ones, and forward listens again."""
    with dial(proxy) as sock:
        assert roundtrip(sock, b"a") == b"a"
        proxy.refuse()
        with pytest.raises(ConnectionResetError):
            sock.recv(1)
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((proxy.host, proxy.port), timeout=WAIT_S).close()
    proxy.forward()
    with dial(proxy) as sock:
        assert roundtrip(sock, b"back") == b"back"


def test_blackhole_holds_bytes_then_forward_delivers_them(proxy: TcpProxy) -> None:
    """A blackhole accepts and keeps connections but moves nothing until forward."""
    with dial(proxy) as old:
        assert roundtrip(old, b"1") == b"1"
        proxy.blackhole()
        with dial(proxy) as new:  # still accepted
            old.sendall(b"held")
            new.sendall(b"also")
            for sock in (old, new):
                sock.settimeout(QUIET_S)
                with pytest.raises(TimeoutError):
                    sock.recv(1)
                sock.settimeout(WAIT_S)
            proxy.forward()
            assert receive(old, 4) == b"held"
            assert receive(new, 4) == b"also"


def test_reset_sends_an_rst_both_ways_then_forwards(proxy: TcpProxy, echo: EchoServer) -> None:
    """Reset aborts every open connection with an RST on both sides; new ones then work."""
    with dial(proxy) as sock:
        assert roundtrip(sock, b"x") == b"x"
        assert proxy.open_connections == 1
        proxy.reset()
        with pytest.raises(ConnectionResetError):
            sock.recv(1)
    assert echo.resets.wait(WAIT_S), "the upstream side saw no RST"
    assert proxy.mode is Mode.FORWARD
    with dial(proxy) as sock:
        assert roundtrip(sock, b"y") == b"y"


def test_a_blackhole_ended_by_reset_releases_nothing(proxy: TcpProxy) -> None:
    """Bytes held by a blackhole die with the connection when it is reset."""
    with dial(proxy) as sock:
        proxy.blackhole()
        sock.sendall(b"lost")
        proxy.reset()
        with pytest.raises(ConnectionResetError):
            sock.recv(1)


def test_switches_take_effect_from_another_thread(proxy: TcpProxy) -> None:
    """A switch made from a thread other than the starter's is in force when it returns."""
    seen: list[Mode] = []
    worker = threading.Thread(target=lambda: (proxy.refuse(), seen.append(proxy.mode)))
    worker.start()
    worker.join(WAIT_S)
    assert seen == [Mode.REFUSE]
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((proxy.host, proxy.port), timeout=WAIT_S).close()


def test_switching_while_clients_connect_leaks_no_socket(proxy: TcpProxy) -> None:
    """Refusing and forwarding 40 times while a client keeps connecting leaves nothing unclosed
    (the suite turns a ResourceWarning into a failure)."""
    done = threading.Event()

    def hammer() -> None:
        while not done.is_set():
            with contextlib.suppress(OSError):
                socket.create_connection((proxy.host, proxy.port), timeout=WAIT_S).close()

    worker = threading.Thread(target=hammer)
    worker.start()
    try:
        for _ in range(40):
            proxy.refuse()
            proxy.forward()
    finally:
        done.set()
        worker.join(WAIT_S)
    gc.collect()
    with dial(proxy) as sock:
        assert roundtrip(sock, b"ok") == b"ok"


def test_a_proxy_that_was_never_started_refuses_switches() -> None:
    """Switching a proxy before start() raises ProxyNotRunning."""
    with pytest.raises(ProxyNotRunning):
        TcpProxy("127.0.0.1", 9).blackhole()


def test_upstream_down_resets_the_client(echo: EchoServer) -> None:
    """With nothing listening upstream, a client connection through the proxy is reset."""
    free = socket.socket()
    free.bind(("127.0.0.1", 0))
    port = free.getsockname()[1]
    free.close()
    # The reset may race the client's (internally non-blocking) connect: it
    # then surfaces from connect itself rather than from the first read.
    with (
        TcpProxy("127.0.0.1", port) as proxy,
        pytest.raises(ConnectionResetError),
        dial(proxy) as sock,
    ):
        sock.recv(1)


@pytest.fixture
def double_behind_proxy() -> Iterator[tuple[MongoDouble, TcpProxy]]:
    """The double on 127.0.0.2:P advertising 127.0.0.1:P, where the proxy listens."""
    with TcpProxy("127.0.0.2", 0) as proxy:  # upstream port set once the proxy has its own
        proxy.upstream = ("127.0.0.2", proxy.port)
        with MongoDouble("127.0.0.2", proxy.port, advertised_host="127.0.0.1") as double:
            yield double, proxy


def client_for(proxy: TcpProxy) -> pymongo.MongoClient[dict[str, Any]]:
    return pymongo.MongoClient(
        f"mongodb://127.0.0.1:{proxy.port}/?replicaSet=rs0",
        serverSelectionTimeoutMS=2000,
        connectTimeoutMS=2000,
        socketTimeoutMS=2000,
    )


def test_replica_set_client_stays_behind_the_proxy(
    double_behind_proxy: tuple[MongoDouble, TcpProxy],
) -> None:
    """A replicaSet URI client talks through the proxy: refusing cuts it off, forward heals."""
    _, proxy = double_behind_proxy
    client = client_for(proxy)
    try:
        client.app.jobs.insert_one({"job_id": "a"})
        assert client.address == ("127.0.0.1", proxy.port)
        proxy.refuse()
        with pytest.raises(PyMongoError):
            client.app.jobs.find_one({"job_id": "a"})
        proxy.forward()
        assert client.app.jobs.find_one({"job_id": "a"}) is not None
    finally:
        client.close()


def test_pymongo_times_out_in_a_blackhole_and_recovers(
    double_behind_proxy: tuple[MongoDouble, TcpProxy],
) -> None:
    """An operation on a blackholed link times out; after forward the same client works."""
    _, proxy = double_behind_proxy
    client = client_for(proxy)
    try:
        assert client.admin.command("ping")["ok"] == 1
        proxy.blackhole()
        with pytest.raises(PyMongoError):
            client.admin.command("ping")
        proxy.forward()
        assert client.admin.command("ping")["ok"] == 1
    finally:
        client.close()
