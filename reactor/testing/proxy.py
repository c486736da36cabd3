"""A TCP proxy whose link can be cut at runtime, for fault tests: :class:`TcpProxy`.

Point the service under test at the proxy and the proxy at MongoDB (or the double), then switch
the link from any thread while the service runs::

    with TcpProxy("127.0.0.1", 27017) as proxy:
        ...                  # clients dial proxy.port
        proxy.blackhole()    # a network partition: accepted, nothing moves, sockets stay open
        proxy.forward()      # healed: the held bytes flow again on the same connections
        proxy.refuse()       # the server is down: new connections refused, open ones reset
        proxy.reset()        # every open connection gets an RST now; then forward again

Each switch takes effect before it returns. A replica-set client rewrites its seed to the
addresses the server advertises in ``hello``, which would bypass the proxy: connect with
``directConnection=true``, or have the server advertise the proxy's ``host:port``.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import socket
import struct
import threading
from collections.abc import Awaitable, Callable
from enum import StrEnum
from types import TracebackType

from reactor.errors import ReactorError

_CALL_TIMEOUT_S = 10.0
_CHUNK = 65536
_RST = struct.pack("ii", 1, 0)  # SO_LINGER on, 0 s: close() sends RST instead of FIN


class ProxyNotRunning(ReactorError):
    """A switch was used on a proxy that is not serving."""


class Mode(StrEnum):
    """What the proxy does with the link."""

    FORWARD = "forward"  # bytes flow both ways
    REFUSE = "refuse"  # no listener: connecting fails with ECONNREFUSED
    BLACKHOLE = "blackhole"  # connections are accepted and held; nothing moves either way


class _Link:
    """One accepted client socket and, once forwarding began, its upstream connection."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.client: asyncio.StreamWriter | None = None
        self.upstream: asyncio.StreamWriter | None = None
        self.task: asyncio.Task[None] | None = None
        self.closed = False

    def writers(self) -> list[asyncio.StreamWriter]:
        return [w for w in (self.client, self.upstream) if w is not None]

    def reset(self) -> None:
        """Abort both sockets with an RST (a socket not yet wrapped is aborted once it is)."""
        self.closed = True
        if self.client is None:
            _linger_zero(self.sock)
        for writer in self.writers():
            _abort_with_rst(writer)

    def close(self) -> None:
        """Close both sockets with a FIN."""
        self.closed = True
        for writer in self.writers():
            writer.close()


class TcpProxy:
    """Forwards ``host:port`` to ``upstream_host:upstream_port``; serves from its own thread."""

    def __init__(
        self,
        upstream_host: str,
        upstream_port: int,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.upstream = (upstream_host, upstream_port)  # new connections dial what it holds
        self.host = host
        self.port = port
        self._mode = Mode.FORWARD
        self._loop: asyncio.AbstractEventLoop | None = None
        self._listener: socket.socket | None = None
        self._flowing: asyncio.Event | None = None
        self._stopping: asyncio.Event | None = None
        self._links: set[_Link] = set()
        self._ready = threading.Event()
        self._thread: threading.Thread | None = None
        self._failure: BaseException | None = None

    @property
    def mode(self) -> Mode:
        return self._mode

    @property
    def open_connections(self) -> int:
        """Client connections the proxy holds open right now."""
        return len(self._links)

    def start(self) -> TcpProxy:
        """Listen and serve in a background thread; returns once the port is bound."""
        if self._thread is not None:
            raise ProxyNotRunning("a TcpProxy can be started only once")
        self._thread = threading.Thread(target=self._run, name="tcp-proxy", daemon=True)
        self._thread.start()
        self._ready.wait()
        if self._failure is not None:
            self._thread.join()
            raise self._failure
        return self

    def stop(self) -> None:
        """Close the listener and every connection, and join the serving thread."""
        loop, stopping = self._loop, self._stopping
        if loop is not None and stopping is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(stopping.set)
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join()

    def __enter__(self) -> TcpProxy:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    # The switches.

    def forward(self) -> None:
        """Listen again if needed and let bytes flow, also on connections held by a blackhole."""
        self._call(self._forward)

    def refuse(self) -> None:
        """Stop listening, so connecting is refused, and reset every open connection."""
        self._call(self._refuse)

    def blackhole(self) -> None:
        """Keep accepting, forward nothing in either direction, and keep every socket open."""
        self._call(self._blackhole)

    def reset(self) -> None:
        """Send an RST on every open connection (both sides), then forward."""

        async def reset() -> None:
            self._reset_all()
            await self._forward()

        self._call(reset)

    # The loop thread.

    async def _forward(self) -> None:
        await self._listen()
        self._mode = Mode.FORWARD
        self._require(self._flowing).set()

    async def _blackhole(self) -> None:
        await self._listen()
        self._mode = Mode.BLACKHOLE
        self._require(self._flowing).clear()

    async def _refuse(self) -> None:
        self._mode = Mode.REFUSE
        listener, self._listener = self._listener, None
        if listener is not None:
            asyncio.get_running_loop().remove_reader(listener.fileno())
            listener.close()
        self._reset_all()

    async def _listen(self) -> None:
        # Our own accept loop rather than asyncio.start_server: closing an asyncio Server with a
        # connection half-accepted leaks that socket, and refusing closes the listener often.
        if self._listener is None:
            listener = socket.create_server((self.host, self.port), backlog=128)
            listener.setblocking(False)
            self.port = listener.getsockname()[1]
            asyncio.get_running_loop().add_reader(listener.fileno(), self._accept, listener)
            self._listener = listener

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                sock, _ = listener.accept()
            except OSError:  # nothing more to accept now (BlockingIOError), or closed
                return
            sock.setblocking(False)
            link = _Link(sock)
            self._links.add(link)
            link.task = asyncio.create_task(self._serve(link))
            link.task.add_done_callback(functools.partial(self._forget, link))

    def _forget(self, link: _Link, _: object) -> None:
        self._links.discard(link)

    def _reset_all(self) -> None:
        for link in list(self._links):
            link.reset()
            if link.task is not None and link.client is not None:
                link.task.cancel()  # one still being wrapped aborts itself once wrapped
        self._links.clear()

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # reported to start(), which re-raises it
            self._failure = exc
        finally:
            self._ready.set()

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        self._flowing = asyncio.Event()
        self._flowing.set()
        await self._listen()
        try:
            self._ready.set()
            await self._stopping.wait()
        finally:
            await self._refuse()

    async def _serve(self, link: _Link) -> None:
        try:
            client, link.client = await asyncio.open_connection(sock=link.sock)
        except OSError:
            link.sock.close()
            return
        if link.closed:  # reset while being wrapped
            _abort_with_rst(link.client)
            return
        flowing = self._require(self._flowing)
        await flowing.wait()
        try:
            upstream, link.upstream = await asyncio.open_connection(*self.upstream)
        except OSError:  # the server is down: the client sees what it would see, an RST
            link.reset()
            return
        try:
            await asyncio.gather(
                self._pump(client, link.upstream, link), self._pump(upstream, link.client, link)
            )
        finally:
            link.close()

    async def _pump(
        self, source: asyncio.StreamReader, sink: asyncio.StreamWriter, link: _Link
    ) -> None:
        flowing = self._require(self._flowing)
        try:
            while True:
                await flowing.wait()
                data = await source.read(_CHUNK)
                if not data:
                    break
                await flowing.wait()  # a blackhole that began during the read holds this chunk
                sink.write(data)
                await sink.drain()
        except ConnectionResetError:
            link.reset()  # pass the RST on to the other side
        except OSError:
            pass
        link.close()

    def _require(self, value: asyncio.Event | None) -> asyncio.Event:
        if value is None:
            raise ProxyNotRunning("the TcpProxy is not running; call start() first")
        return value

    def _call(self, action: Callable[[], Awaitable[None]]) -> None:
        loop = self._loop
        if loop is None or loop.is_closed():
            raise ProxyNotRunning("the TcpProxy is not running; call start() first")
        if self._thread is threading.current_thread():
            raise ProxyNotRunning("switches cannot be used from the proxy's own thread")

        async def run() -> None:
            await action()

        asyncio.run_coroutine_threadsafe(run(), loop).result(_CALL_TIMEOUT_S)


def _linger_zero(sock: socket.socket | None) -> None:
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _RST)


def _abort_with_rst(writer: asyncio.StreamWriter) -> None:
    _linger_zero(writer.get_extra_info("socket"))
    writer.transport.abort()
