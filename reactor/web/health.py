"""``/healthz``, ``/readyz`` and ``/metrics``: what the probes and Prometheus ask, answered from
the running parts (:class:`Probes`), served by uvicorn inside the reactor's task group."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any, Protocol

import anyio
import uvicorn
from anyio.abc import TaskStatus
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from reactor.driver import Calls
from reactor.errors import ConfigError
from reactor.liveness import Liveness, describe
from reactor.logging import get_logger
from reactor.metrics import Metrics
from reactor.shutdown import Shutdown
from reactor.store import Store

log = get_logger("reactor.web")

MONGO_PING_TIMEOUT_S = 2.0


class Stream(Protocol):
    def seconds_since_progress(self) -> float: ...


class Pool(Protocol):
    @property
    def healthy(self) -> bool: ...

    @property
    def restarts(self) -> Any: ...


@dataclass(frozen=True)
class Probes:
    """The running parts the endpoints read."""

    liveness: Liveness
    shutdown: Shutdown
    store: Store
    stream: Stream
    pool: Pool
    metrics: Metrics
    calls: Calls
    ready_stall_s: float

    async def readiness(self) -> list[str]:
        """Why the reactor should get no new work now; empty when it is ready."""
        if self.shutdown.requested:
            return ["draining"]
        reasons = []
        try:
            await self.store.ping(MONGO_PING_TIMEOUT_S)
        except Exception as exc:
            reasons.append(f"MongoDB does not answer: {type(exc).__name__}: {str(exc)[:200]}")
        stalled_s = self.stream.seconds_since_progress()
        if stalled_s > self.ready_stall_s:
            reasons.append(
                f"change stream has not advanced for {stalled_s:.0f} s "
                f"(limit {self.ready_stall_s:g} s)"
            )
        if not self.pool.healthy:
            reasons.append("CPU pool is not healthy")
        return reasons

    async def refresh_metrics(self) -> None:
        """Read the gauges that are state, not counts (queued jobs costs one count query)."""
        self.metrics.refresh(
            token_age_s=self.stream.seconds_since_progress(),
            pool_restarts=dict(self.pool.restarts),
        )
        try:
            count = self.store.count_queued(MONGO_PING_TIMEOUT_S)
            self.metrics.queued.set(await count)
        except Exception as exc:
            log.warning("metrics_count_failed", error=str(exc))


def health_routes(probes: Probes) -> list[Route]:
    async def healthz(request: Request) -> Response:
        problems = probes.liveness.problems()
        return JSONResponse(describe(problems), status_code=503 if problems else 200)

    async def readyz(request: Request) -> Response:
        reasons = await probes.readiness()
        body = {"status": "not ready" if reasons else "ready", "reasons": reasons}
        return JSONResponse(body, status_code=503 if reasons else 200)

    async def metrics(request: Request) -> Response:
        await probes.refresh_metrics()
        return Response(probes.metrics.render(), media_type=CONTENT_TYPE_LATEST)

    return [Route("/healthz", healthz), Route("/readyz", readyz), Route("/metrics", metrics)]


def build_app(probes: Probes) -> Starlette:
    return Starlette(routes=health_routes(probes))


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling: the reactor owns SIGTERM and SIGINT."""

    def install_signal_handlers(self) -> None:
        return None

    def capture_signals(self) -> Any:
        return contextlib.nullcontext()


async def serve_http(
    app: Starlette,
    host: str,
    port: int,
    *,
    task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Serve ``app`` until cancelled, then shut uvicorn down cleanly."""
    config = uvicorn.Config(
        app, host=host, port=port, log_config=None, access_log=False, lifespan="off"
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
