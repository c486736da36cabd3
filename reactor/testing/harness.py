"""A real reactor inside your tests: :func:`running_reactor`, and the pytest fixture around it.

::

    from reactor.testing import running_reactor

    async def test_shout() -> None:
        async with running_reactor({"shout": shout}) as reactor:
            result = await reactor.submit_and_wait("shout", {"text": "hi"})
        assert result["result"] == "HI"

:func:`running_reactor` starts a :class:`~reactor.testing.MongoDouble` (unless given a
``mongo_uri``), a fresh database and jobs directory, and a :class:`~reactor.service.Reactor`
serving the given handlers, in the caller's task group; it stops the reactor on exit. The
object it yields (:class:`RunningReactor`) holds the settings, a synchronous PyMongo ``db`` to
look at documents, and coroutines to submit jobs and wait for results. Those coroutines open a
short-lived client in whatever event loop awaits them, so the object works from any test.

The fixture ``reactor_harness`` (:mod:`reactor.testing.fixtures`) runs the same reactor in a
thread of its own (an anyio blocking portal), so that it works the same under pytest-asyncio's
strict and auto modes, anyio's pytest plugin, and in plain synchronous tests.
"""

from __future__ import annotations

import tempfile
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from contextlib import AsyncExitStack, asynccontextmanager, contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import anyio
from anyio.from_thread import start_blocking_portal
from pymongo import AsyncMongoClient, MongoClient
from pymongo.database import Database

from reactor import client as jobs_client
from reactor import workdir
from reactor.config import Settings, load_settings
from reactor.logging import configure_in_host
from reactor.registry import Registry, build_handler

Handlers = Registry | Mapping[str, Callable[..., Any]] | None
Doc = dict[str, Any]

# Settings for a reactor under test: no HTTP port, short leases, a small pool.
TEST_DEFAULTS: dict[str, Any] = {
    "http_port": 0,
    "lease_s": 5.0,
    "connect_timeout_s": 10.0,
    "cpu_workers": 1,
    "job_timeout_s": 60.0,
    "drain_s": 5.0,
}


@dataclass
class RunningReactor:
    """A reactor serving in the background of a test, and what the test needs to talk to it."""

    settings: Settings
    db: Database[Doc]  # synchronous PyMongo: look at jobs and results from any test
    reactor: Any  # the running reactor.service.Service (in another thread under the fixture)

    @property
    def uri(self) -> str:
        """The MongoDB URI the reactor uses."""
        return self.settings.mongo_uri

    @property
    def jobs_root(self) -> Path:
        """The parent of every job's directory."""
        return self.settings.jobs_root

    def job_dir(self, job_id: str) -> Path:
        """The directory a job runs in (its handler's files land here)."""
        return workdir.job_dir(self.settings.jobs_root, job_id)

    async def submit(
        self,
        command: str,
        args: Mapping[str, Any] | None = None,
        *,
        job_id: str | None = None,
        priority: float | None = None,
        run_at: datetime | None = None,
    ) -> str:
        """Insert a job (as a client would) and return its ``job_id``."""
        async with self._database() as db:
            return await jobs_client.submit(
                db,
                command,
                args,
                job_id=job_id,
                jobs=self.settings.jobs_collection,
                priority=priority,
                run_at=run_at,
            )

    async def wait_for(self, job_id: str, *, timeout_s: float = 30.0, min_run: int = 1) -> Doc:
        """The job's result document, once written; ``TimeoutError`` after ``timeout_s``.

        ``timeout_s`` is the CLI's ``--timeout-s`` (``reactor submit --wait``).
        """
        async with self._database() as db:
            return await jobs_client.wait_for_result(
                db,
                job_id,
                timeout_s=timeout_s,
                results=self.settings.results_collection,
                min_run=min_run,
            )

    async def submit_and_wait(
        self,
        command: str,
        args: Mapping[str, Any] | None = None,
        *,
        job_id: str | None = None,
        timeout_s: float = 30.0,
        priority: float | None = None,
        run_at: datetime | None = None,
    ) -> Doc:
        """Submit a job and return its result document (``status``, ``result`` or ``error``),
        waiting at most ``timeout_s`` (the CLI's ``--timeout-s``)."""
        key = await self.submit(command, args, job_id=job_id, priority=priority, run_at=run_at)
        return await self.wait_for(key, timeout_s=timeout_s)

    @asynccontextmanager
    async def _database(self) -> AsyncIterator[Any]:
        client: AsyncMongoClient[Doc] = AsyncMongoClient(self.settings.mongo_uri, tz_aware=True)
        try:
            yield client[self.settings.db]
        finally:
            await client.close()


def registry_of(handlers: Handlers) -> Registry | None:
    """A registry from a mapping of command name to function (``None``: the installed ones)."""
    if handlers is None or isinstance(handlers, Registry):
        return handlers
    return Registry(build_handler(name, fn) for name, fn in handlers.items())


@asynccontextmanager
async def running_reactor(
    handlers: Handlers = None,
    *,
    mongo_uri: str | None = None,
    jobs_root: Path | None = None,
    **settings: Any,
) -> AsyncIterator[RunningReactor]:
    """Start a reactor serving ``handlers`` for the duration of the block.

    ``handlers``: a mapping of command name to function (built like entry points: an
    ``async def`` runs on the loop, a plain ``def`` in a thread, ``@handler(runs="process")`` in
    the CPU pool, which needs a top-level function of an importable module), a
    :class:`~reactor.registry.Registry`, or ``None`` for the installed entry points plus any
    ``handler_modules``. ``mongo_uri``: a replica set to use instead of a fresh double (a
    database of a random name is used and dropped). ``jobs_root``: where job directories go
    (default: a temporary directory, removed afterwards). Other keywords are settings
    (``max_jobs=4``, ``handler_modules="app.py"``); :data:`TEST_DEFAULTS` fill the rest.
    Log lines are rendered as ``log_format`` says and handed to the host's ``logging``
    (:func:`reactor.logging.configure_in_host`), so pytest captures them.
    """
    from reactor.service import Reactor

    async with AsyncExitStack() as stack:
        uri = mongo_uri or stack.enter_context(_double()).uri
        root = jobs_root or Path(stack.enter_context(tempfile.TemporaryDirectory()))
        config = _test_settings(uri, root, settings)
        configure_in_host(
            config.log_format,
            config.log_level,
            show_locals=config.log_locals,
            max_line_bytes=config.log_max_line_bytes,
        )
        sync_client = stack.enter_context(_sync_client(config, drop=mongo_uri is not None))
        reactor = Reactor(config, registry=registry_of(handlers))
        body_error: BaseException | None = None
        try:
            async with anyio.create_task_group() as tg:
                service = await tg.start(reactor.serve)
                try:
                    yield RunningReactor(config, sync_client[config.db], service)
                except BaseException as exc:
                    body_error = exc
                    raise
                finally:
                    service.stop()
        except BaseExceptionGroup as group:
            raise _alone(group, body_error) from None


def _test_settings(uri: str, root: Path, settings: Mapping[str, Any]) -> Settings:
    db = f"test_{uuid.uuid4().hex[:12]}"
    return load_settings(**{**TEST_DEFAULTS, "mongo_uri": uri, "db": db, "jobs_root": root,
                            **settings})  # fmt: skip


def _alone(
    group: BaseExceptionGroup[BaseException], body_error: BaseException | None
) -> BaseException:
    """A failing assertion in the test's block, or a reactor that cannot start (MongoDB
    unreachable), should read as itself, not as a group of one."""
    alone = group.exceptions[0] if len(group.exceptions) == 1 else None
    if alone is not None and body_error in (None, alone):
        return alone
    return group


@contextmanager
def reactor_in_thread(handlers: Handlers = None, **options: Any) -> Iterator[RunningReactor]:
    """:func:`running_reactor` served by an event loop in a thread of its own (the fixture's way).

    Usable from synchronous code and from any test plugin: nothing of it belongs to the test's
    event loop or task.
    """
    with (
        start_blocking_portal() as portal,
        portal.wrap_async_context_manager(running_reactor(handlers, **options)) as running,
    ):
        yield running


@contextmanager
def _double() -> Iterator[Any]:
    from reactor.testing.double.server import MongoDouble

    with MongoDouble() as double:
        yield double


@contextmanager
def _sync_client(settings: Settings, *, drop: bool) -> Iterator[MongoClient[Doc]]:
    client: MongoClient[Doc] = MongoClient(settings.mongo_uri, tz_aware=True)
    try:
        yield client
    finally:
        if drop:
            client.drop_database(settings.db)
        client.close()


__all__ = ["TEST_DEFAULTS", "RunningReactor", "reactor_in_thread", "registry_of", "running_reactor"]
