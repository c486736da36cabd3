"""The MongoDB backends every integration test runs on: two separate doubles and a replica set."""

from __future__ import annotations

import functools
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from reactor.testing import MongoDouble

MONGO_IMAGE = "mongo:8"


@dataclass
class Backend:
    """A running MongoDB and, for the double, its fault hooks."""

    name: str
    uri: str
    double: MongoDouble | None = None


@functools.cache
def docker_unavailable_reason() -> str | None:
    """Why the replica-set backend cannot run here, or None when a Docker engine answers.

    Asks the engine's ``/_ping`` directly: the docker client library leaks its socket when the
    engine is missing, which the suite's ``filterwarnings=error`` would turn into a failure.
    """
    host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    try:
        if host.startswith("unix://"):
            sock = socket.socket(socket.AF_UNIX)
            address: Any = host.removeprefix("unix://")
        else:
            parsed = urlsplit(host)
            sock = socket.socket()
            address = (parsed.hostname or "localhost", parsed.port or 2375)
        with sock:
            sock.settimeout(3)
            sock.connect(address)
            sock.sendall(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
            answered = b" 200 " in sock.recv(1024)
    except OSError as exc:
        answered, why = False, f"{type(exc).__name__}: {exc}"
    else:
        why = "the engine did not answer /_ping with 200"
    if answered:
        return None
    return (
        f"no Docker engine answers at {host} ({why}); the real replica-set backend runs "
        "through testcontainers wherever Docker exists"
    )


@contextmanager
def double_backend(name: str = "double") -> Iterator[Backend]:
    """A fresh double of its own (a second one shares nothing with the first)."""
    with MongoDouble() as double:
        yield Backend(name, double.uri, double)


@contextmanager
def replica_set_backend() -> Iterator[Backend]:
    from testcontainers.core.container import DockerContainer
    from testcontainers.core.waiting_utils import wait_for_logs

    container: Any = (
        DockerContainer(MONGO_IMAGE)
        .with_command("--replSet rs0 --bind_ip_all")
        .with_exposed_ports(27017)
    )
    with container:
        wait_for_logs(container, "Waiting for connections", timeout=60)
        code, output = container.exec(
            [
                "mongosh",
                "--quiet",
                "--eval",
                "rs.initiate({_id: 'rs0', members: [{_id: 0, host: 'localhost:27017'}]}); "
                "while (!db.hello().isWritablePrimary) { sleep(100) }",
            ]
        )
        if code != 0:
            raise RuntimeError(f"replica set did not initiate: {output!r}")
        host = container.get_container_host_ip()
        port = container.get_exposed_port(27017)
        yield Backend("replica-set", f"mongodb://{host}:{port}/?directConnection=true")
