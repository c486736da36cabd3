"""The double's TCP server: a background thread running its own event loop, and the fault hooks."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import threading
from collections.abc import Awaitable, Callable, Collection, Sequence
from types import TracebackType
from typing import TypeVar

from reactor.errors import ReactorError
from reactor.testing.double import ttl, versions
from reactor.testing.double.connection import serve_connection
from reactor.testing.double.context import Backend
from reactor.testing.double.versions import DEFAULT_SERVER_VERSION

T = TypeVar("T")
_CALL_TIMEOUT_S = 10.0


class DoubleNotRunning(ReactorError):
    """A fault hook was called on a double that is not serving."""


class MongoDouble:
    """A one-member replica set speaking the MongoDB wire protocol, with an in-memory engine.

    ``start()`` serves from a background thread; ``serve_forever()`` serves from the caller's
    thread. The fault hooks may be called from any thread and take effect before they return.
    ``server_version`` is the MongoDB release it poses as (``"8.0"``, or ``"7.0"``: wire version
    21 and no ``bulkWrite``); an unknown one raises UnknownServerVersion here.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        replica_set: str = "rs0",
        advertised_host: str | None = None,
        server_version: str = DEFAULT_SERVER_VERSION,
    ) -> None:
        self.host = host
        self.port = port
        self.replica_set = replica_set
        self.advertised_host = advertised_host or _reachable(host)
        self.server_version = versions.server_version(server_version)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._backend: Backend | None = None
        self._connections: dict[int, asyncio.Task[None]] = {}
        self._connection_ids = itertools.count(1)
        self._ready = threading.Event()
        self._thread: threading.Thread | None = None
        self._failure: BaseException | None = None
        self._stop_requested = False

    @property
    def uri(self) -> str:
        return f"mongodb://{self.advertised_host}:{self.port}/?replicaSet={self.replica_set}"

    def start(self) -> MongoDouble:
        """Serve in a background thread; returns once the port is listening."""
        if self._thread is not None:
            raise DoubleNotRunning("a MongoDouble can be started only once")
        self._thread = threading.Thread(target=self._run, name="mongo-double", daemon=True)
        self._thread.start()
        self._ready.wait()
        if self._failure is not None:
            self._thread.join()
            raise self._failure
        return self

    def serve_forever(self) -> None:
        """Serve from this thread until :meth:`stop` is called from another (or Ctrl-C)."""
        self._run()
        if self._failure is not None and not isinstance(self._failure, KeyboardInterrupt):
            raise self._failure

    def stop(self) -> None:
        """Close the listener and every connection, and join the serving thread."""
        self._stop_requested = True
        loop, stopping = self._loop, self._stopping
        if loop is not None and stopping is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(stopping.set)
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join()

    def __enter__(self) -> MongoDouble:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    # Fault injection.

    def drop_connections(self) -> None:
        """Close every open client connection now (pending getMores die with them)."""
        self._call(self._close_connections)

    def fail_next(
        self,
        n: int,
        *,
        code: int,
        labels: Sequence[str] | None = None,
        commands: Collection[str] | None = None,
        message: str = "injected failure",
        collections: Collection[str] | None = None,
    ) -> None:
        """Answer the next ``n`` commands (only those named, and on the collections named, if
        given) with this error.

        ``labels`` None: the labels MongoDB would attach (``ResumableChangeStreamError`` on a
        change stream's aggregate or getMore for a resumable code, ``NonResumableChangeStreamError``
        for 280 and 286); a sequence, even an empty one, is sent instead of them.
        """

        async def arm() -> None:
            faults = self._require_backend().faults
            faults.fail_next(n, code, labels, commands, message, collections)

        self._call(arm)

    def forget_history(self) -> None:
        """Lose the change-stream history so far: resuming from before now fails with 286."""

        async def forget() -> None:
            self._require_backend().log.forget()

        self._call(forget)

    def stall_change_streams(self) -> None:
        """Hold every change-stream getMore unanswered until :meth:`resume_change_streams`."""

        async def stall() -> None:
            self._require_backend().faults.stall()

        self._call(stall)

    def resume_change_streams(self) -> None:
        """Let stalled change-stream getMores answer again."""

        async def resume() -> None:
            backend = self._require_backend()
            backend.faults.resume()
            backend.log.notify()  # waiting getMores answer now with what was held

        self._call(resume)

    # The loop thread.

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
        server = await asyncio.start_server(self._on_connect, self.host, self.port)
        expiry: asyncio.Task[None] | None = None
        try:
            self.port = server.sockets[0].getsockname()[1]
            address = f"{self.advertised_host}:{self.port}"
            self._backend = Backend(self.replica_set, address, server=self.server_version)
            expiry = asyncio.create_task(ttl.monitor(self._backend))
            self._ready.set()
            if not self._stop_requested:  # else stop() ran before the loop existed
                await self._stopping.wait()
        finally:
            if expiry is not None:
                expiry.cancel()
            server.close()
            await self._close_connections()
            await server.wait_closed()

    def _on_connect(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # A task of our own: cancelling asyncio's callback task trips a 3.11 bug in streams.py.
        connection_id = next(self._connection_ids)
        backend = self._require_backend()
        task = asyncio.create_task(serve_connection(backend, reader, writer, connection_id))
        self._connections[connection_id] = task
        task.add_done_callback(lambda _: self._connections.pop(connection_id, None))

    async def _close_connections(self) -> None:
        tasks = list(self._connections.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _require_backend(self) -> Backend:
        if self._backend is None:
            raise DoubleNotRunning("the MongoDouble is not running; call start() first")
        return self._backend

    def _call(self, action: Callable[[], Awaitable[T]]) -> T:
        loop = self._loop
        if loop is None or loop.is_closed() or self._backend is None:
            raise DoubleNotRunning("the MongoDouble is not running; call start() first")
        if self._thread is threading.current_thread():
            raise DoubleNotRunning("fault hooks cannot be called from the double's own thread")

        async def run() -> T:
            return await action()

        future = asyncio.run_coroutine_threadsafe(run(), loop)
        return future.result(_CALL_TIMEOUT_S)


def _reachable(host: str) -> str:
    """The address clients should dial for a listener bound to ``host``."""
    return "127.0.0.1" if host in {"", "0.0.0.0", "::"} else host
