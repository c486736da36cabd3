"""The web layer's pure parts: tokens and roles, the dashboard session, JSON encoding of BSON
values, cursors, the body bound, and the plots the dashboard draws."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from bson import ObjectId
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from reactor.config import load_settings
from reactor.errors import ConfigError
from reactor.web.api import encode
from reactor.web.api.auth import Role, Tokens
from reactor.web.api.errors import ApiError
from reactor.web.api.jobs import decode_cursor, encode_cursor
from reactor.web.limits import BodyLimit
from reactor.web.ui import data
from reactor.web.ui.session import SESSION_S, Sessions


def test_tokens_grant_their_roles_and_nothing_else() -> None:
    """The write token writes, the read token reads, anything else (empty too) is nobody."""
    tokens = Tokens("write-token", "read-token")
    assert tokens.role_of("write-token") is Role.WRITE
    assert tokens.role_of("read-token") is Role.READ
    assert tokens.role_of("write-toke") is Role.NONE
    assert tokens.role_of("") is Role.NONE
    assert Tokens("write-token").role_of("") is Role.NONE


def test_a_session_cookie_holds_no_token_and_expires() -> None:
    """A session names its role, is refused once forged, changed or older than SESSION_S."""
    sessions = Sessions(Tokens("write-token", "read-token"))
    cookie = sessions.issue(Role.WRITE, now=1_000_000)
    assert "write-token" not in cookie
    assert sessions.role_of(cookie, now=1_000_010) is Role.WRITE
    assert sessions.role_of(sessions.issue(Role.READ, now=5), now=6) is Role.READ
    assert sessions.role_of(cookie, now=1_000_000 + SESSION_S + 1) is Role.NONE
    issued, _, mac = cookie.split(".")
    forged = mac[:-1] + ("1" if mac.endswith("0") else "0")
    assert sessions.role_of(f"{issued}.{Role.WRITE.value}.{forged}", now=1_000_010) is Role.NONE
    assert sessions.role_of(f"{issued}.{Role.READ.value}.{mac}", now=1_000_010) is Role.NONE
    assert Sessions(Tokens("other")).role_of(cookie, now=1_000_010) is Role.NONE


def test_bson_values_become_plain_json() -> None:
    """Dates become ISO-8601 UTC, ObjectIds and bytes strings, non-finite floats text."""
    oid = ObjectId()
    when = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    doc = {"_id": oid, "at": when, "raw": b"\x00\x01", "n": float("nan"), "list": [when]}
    assert encode.plain(doc) == {
        "_id": str(oid),
        "at": "2026-01-02T03:04:05Z",
        "raw": "AAE=",
        "n": "nan",
        "list": ["2026-01-02T03:04:05Z"],
    }
    assert encode.job({"job_id": "a"})["status"] == "queued"


@pytest.mark.parametrize("doc_id", [ObjectId(), 42, "text id", {"compound": 1}])
def test_a_cursor_gives_back_the_id_it_was_made_from(doc_id: Any) -> None:
    """Any _id survives the cursor's round trip; a cursor the API never gave is a 422."""
    assert decode_cursor(encode_cursor(doc_id)) == doc_id
    with pytest.raises(ApiError) as refused:
        decode_cursor("not-a-cursor")
    assert refused.value.status == 422


async def _echo_length(request: Request) -> JSONResponse:
    return JSONResponse({"bytes": len(await request.body())})


async def test_a_body_over_the_bound_is_413_whether_declared_or_streamed() -> None:
    """A declared length over the bound, or a streamed body that grows past it, answers 413."""
    app = BodyLimit(Starlette(routes=[Route("/", _echo_length, methods=["POST"])]), 1024)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        small = await http.post("/", content=b"x" * 1000)

        async def chunks() -> Any:
            for _ in range(5):
                yield b"y" * 400

        declared = await http.post("/", content=b"x" * 2000)
        streamed = await http.post("/", content=chunks())
    assert small.json() == {"bytes": 1000}
    assert declared.status_code == 413
    assert streamed.status_code == 413
    assert streamed.json()["error"]["type"] == "too_large"


def test_a_plot_scales_values_into_its_box() -> None:
    """Points run from the left edge to the right, the peak at the top, zero at the bottom."""
    drawn = data.plot([(0.0, 0.0), (1800.0, 5.0), (3600.0, 10.0)], 3600.0, "jobs")
    assert drawn.points == "0.0,60.0 150.0,30.0 300.0,0.0"
    assert drawn.peak == 10.0
    assert data.plot([], 3600.0, "jobs").empty


def test_times_fall_into_minute_buckets_of_the_window() -> None:
    """Each finish counts in its minute; ones outside the window are left out."""
    start = datetime(2026, 1, 1, tzinfo=UTC)
    times = [start + timedelta(seconds=s) for s in (5, 30, 61, 3599, 3600, -1)]
    counts = data.buckets(times, start, 60)
    assert counts[0] == 2
    assert counts[1] == 1
    assert counts[59] == 1
    assert sum(counts) == 4


def test_the_queue_plot_takes_the_largest_count_any_reactor_saw() -> None:
    """Two reactors sampling the queue in one minute: the larger count is that minute's."""
    start = datetime(2026, 1, 1, tzinfo=UTC)
    members = [
        {"samples": [{"at": start + timedelta(seconds=10), "queued": 3}]},
        {"samples": [{"at": start + timedelta(seconds=20), "queued": 7},
                     {"at": start + timedelta(seconds=70), "queued": None}]},
    ]  # fmt: skip
    assert data.queue_series(members, start) == [(30.0, 7.0)]


def test_a_fleet_ttl_shorter_than_two_heartbeats_stops_the_service() -> None:
    """fleet_ttl_s under twice fleet_heartbeat_s, or a read token alone, is a ConfigError."""
    with pytest.raises(ConfigError, match="REACTOR_FLEET_TTL_S"):
        load_settings(fleet_ttl_s=5, fleet_heartbeat_s=10).check_service()
    with pytest.raises(ConfigError, match="REACTOR_API_READ_TOKEN"):
        load_settings(api_read_token="ro").check_service()
    load_settings(fleet_ttl_s=20, fleet_heartbeat_s=10, api_token="a").check_service()
