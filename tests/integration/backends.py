"""The two MongoDB backends every integration test runs on: the double and a real replica set."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from reactor.testing import MongoDouble

MONGO_IMAGE = "mongo:8"


@dataclass
class Backend:
    """A running MongoDB and, for the double, its fault hooks."""

    name: str
    uri: str
    double: MongoDouble | None = None


def docker_unavailable_reason() -> str | None:
    """Why the replica-set backend cannot run here, or None when a Docker engine answers."""
    try:
        import docker

        docker.from_env(timeout=3).ping()
    except Exception as exc:
        return (f"no Docker engine answers ({type(exc).__name__}); the real replica-set backend "
                "runs through testcontainers wherever Docker exists")
    return None


@contextmanager
def double_backend() -> Iterator[Backend]:
    with MongoDouble() as double:
        yield Backend("double", double.uri, double)


@contextmanager
def replica_set_backend() -> Iterator[Backend]:
    from testcontainers.core.container import DockerContainer
    from testcontainers.core.waiting_utils import wait_for_logs

    container: Any = (DockerContainer(MONGO_IMAGE)
                      .with_command("--replSet rs0 --bind_ip_all")
                      .with_exposed_ports(27017))
    with container:
        wait_for_logs(container, "Waiting for connections", timeout=60)
        code, output = container.exec(
            ["mongosh", "--quiet", "--eval",
             "rs.initiate({_id: 'rs0', members: [{_id: 0, host: 'localhost:27017'}]}); "
             "while (!db.hello().isWritablePrimary) { sleep(100) }"])
        if code != 0:
            raise RuntimeError(f"replica set did not initiate: {output!r}")
        host = container.get_container_host_ip()
        port = container.get_exposed_port(27017)
        yield Backend("replica-set", f"mongodb://{host}:{port}/?directConnection=true")
