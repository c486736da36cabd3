"""``/api/workers``: the fleet, every reactor seen within ``fleet_ttl_s``."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from reactor import client, model
from reactor.web.api import ApiParts
from reactor.web.api import encode as enc
from reactor.web.api.errors import ERROR_RESPONSES
from reactor.web.api.schemas import WorkerList


def shown(doc: dict[str, Any], samples: bool) -> dict[str, Any]:
    out = dict(enc.plain(doc))
    out["owner"] = out.pop(model.ID, None)
    if not samples:
        out.pop(model.SAMPLES, None)
    return out


def router(parts: ApiParts) -> APIRouter:
    api = APIRouter(
        prefix="/api/workers",
        tags=["workers"],
        responses=ERROR_RESPONSES,
    )

    @api.get("", response_model=WorkerList, dependencies=[parts.auth.reader])
    async def list_workers(
        samples: Annotated[bool, Query(description="Include the last hour's samples.")] = False,
    ) -> dict[str, Any]:
        """The running reactors: host, pid, version, handlers, jobs in flight, CPU and memory."""
        found = await client.workers(parts.db, ttl_s=parts.fleet_ttl_s, now=parts.now())
        return {"workers": [shown(doc, samples) for doc in found]}

    return api
