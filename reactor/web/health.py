"""``/healthz``, ``/readyz`` and ``/metrics``, served by uvicorn inside the reactor's task group."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import anyio
import uvicorn
from anyio.abc import TaskStatus
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from reactor import queries
from reactor.errors import ConfigError
from reactor.liveness import describe
from reactor.logging import get_logger

if TYPE_CHECKING:
    from reactor.service import Reactor

log = get_logger("reactor.web.health")

MONGO_PING_TIMEOUT_S = 2.0


async def readiness(reactor: Reactor) -> list[str]:
    """Why the reactor should get no new work now; empty when it is ready."""
    if reactor.draining:
        return ["draining"]
    reasons = []
    if reactor.store is None:
        reasons.append("not connected to MongoDB yet")
    else:
        try:
            await reactor.store.ping(MONGO_PING_TIMEOUT_S)
        except Exception as exc:
            reasons.append(f"MongoDB does not answer: {type(exc).__name__}: {str(exc)[:200]}")
    stalled_s = reactor.seconds_since_stream_progress()
    if stalled_s > reactor.settings.ready_stall_s:
        reasons.append(
            f"change stream has not advanced for {stalled_s:.0f} s "
            f"(limit {reactor.settings.ready_stall_s:g} s)"
        )
    if reactor.pool is not None and not reactor.pool.healthy:
        reasons.append("CPU pool is not healthy")
    return reasons


def build_app(reactor: Reactor) -> Starlette:
    async def healthz(request: Request) -> Response:
        problems = reactor.liveness.problems()
        return JSONResponse(describe(problems), status_code=503 if problems else 200)

    async def readyz(request: Request) -> Response:
        reasons = await readiness(reactor)
        body = {"status": "not ready" if reasons else "ready", "reasons": reasons}
        return JSONResponse(body, status_code=503 if reasons else 200)

    async def metrics(request: Request) -> Response:
        await refresh_metrics(reactor)
        return Response(reactor.metrics.render(), media_type=CONTENT_TYPE_LATEST)

    return Starlette(
        routes=[Route("/healthz", healthz), Route("/readyz", readyz), Route("/metrics", metrics)]
    )


async def refresh_metrics(reactor: Reactor) -> None:
    """Read the gauges that are state, not counts (queued jobs costs one count query)."""
    restarts = dict(reactor.pool.restarts) if reactor.pool is not None else {}
    reactor.metrics.refresh(
        token_age_s=reactor.seconds_since_stream_progress(), pool_restarts=restarts
    )
    if reactor.store is not None:
        try:
            count = reactor.store.jobs.count_documents(queries.queued())
            queued = await reactor.calls.run("count_queued", MONGO_PING_TIMEOUT_S, count)
            reactor.metrics.queued.set(queued)
        except Exception as exc:
            log.warning("metrics_count_failed", error=str(exc)[:200])


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling: the reactor owns SIGTERM and SIGINT."""

    def install_signal_handlers(self) -> None:
        return None

    def capture_signals(self) -> Any:
        import contextlib

        return contextlib.nullcontext()


async def serve_http(
    reactor: Reactor,
    host: str,
    port: int,
    *,
    task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Serve the endpoints until cancelled, then shut uvicorn down cleanly."""
    config = uvicorn.Config(
        build_app(reactor), host=host, port=port, log_config=None, access_log=False, lifespan="off"
    )
    server = _Server(config)
    done = anyio.Event()

    async def run() -> None:
        with anyio.CancelScope(shield=True):  # stopped through should_exit, not cancellation
            try:
                await server.serve()
            except SystemExit:  # uvicorn exits when it cannot bind
                raise ConfigError(
                    f"cannot serve HTTP on {host}:{port} (address in use?); "
                    "set REACTOR_HTTP_PORT (--http-port), 0 to turn it off"
                ) from None
            finally:
                done.set()

    async with anyio.create_task_group() as tg:
        tg.start_soon(run)
        try:
            while not (server.started or done.is_set()):  # noqa: ASYNC110 (no started event)
                await anyio.sleep(0.01)
            log.info("http_listening", host=host, port=port)
            task_status.started()
            await anyio.sleep_forever()
        finally:
            server.should_exit = True
