"""/api against its own OpenAPI document, with inputs schemathesis generates from it: no server
error, statuses, headers and bodies as documented, invalid input refused, auth not ignored."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import positive_data_acceptance

from tests.integration.backends import Backend
from tests.integration.procs import free_port, reactor_process, until

TOKEN = "schemathesis-token"
HANDLERS = Path(__file__).with_name("api_handlers.py")
MAX_EXAMPLES = 25  # per operation: about 200 requests, a few seconds


def _openapi(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/openapi.json", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.fixture(scope="module")
def api_port(backend: Backend, tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """A ``reactor run`` process with the API on, for the whole module."""
    port = free_port()
    tmp = tmp_path_factory.mktemp("api")
    env = {"api_token": TOKEN, "http_port": port, "http_host": "127.0.0.1",
           "handler_modules": str(HANDLERS)}  # fmt: skip
    with reactor_process(backend, f"s_{uuid.uuid4().hex[:10]}", "api", tmp, **env):
        until(lambda: _openapi(port), 60, "the API answers")
        yield port


# Definitions checked beyond what a schema can say: a job's args against its command's own
# schema (GET /api/handlers/{name}); a workflow's or template's steps for their names, commands,
# references and cycles.
CHECKED_BODIES = {
    ("POST", "/api/jobs"),
    ("POST", "/api/workflows"),
    ("PUT", "/api/templates/{name}"),
    ("POST", "/api/templates/{name}/run"),
}


def excluded(case: schemathesis.Case) -> list[Any]:
    """Where a document cannot say what is valid, schema-valid input may get 422: a body the
    API checks further (:data:`CHECKED_BODIES`), and a cursor, valid only if the API gave it
    out."""
    method, path = case.operation.method.upper(), case.operation.path
    paging = path in ("/api/jobs", "/api/workflows") and bool((case.query or {}).get("cursor"))
    return [positive_data_acceptance] if (method, path) in CHECKED_BODIES or paging else []


@pytest.mark.timeout(600)
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_every_route_answers_as_its_openapi_document_says(
    api_port: int, mode: GenerationMode
) -> None:
    """Generated requests (valid ones, then invalid ones) to each route get documented answers and
    never a server error."""
    schema = schemathesis.openapi.from_url(f"http://127.0.0.1:{api_port}/openapi.json")

    @schema.auth()
    class Bearer:
        """The token, as the document's security scheme asks (not a generated header)."""

        def get(self, case: schemathesis.Case, context: schemathesis.AuthContext) -> str:
            return TOKEN

        def set(
            self, case: schemathesis.Case, data: str, context: schemathesis.AuthContext
        ) -> None:
            case.headers = {**(case.headers or {}), "Authorization": f"Bearer {data}"}

    operations = [found.ok() for found in schema.get_all_operations()]
    assert len(operations) >= 8
    for operation in operations:

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(max_examples=MAX_EXAMPLES, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))  # fmt: skip
        def check(case: schemathesis.Case) -> None:
            case.call_and_validate(excluded_checks=excluded(case))

        check()
