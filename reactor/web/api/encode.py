"""Documents as JSON: dates as ISO-8601 UTC, ObjectIds and other BSON values as strings."""

from __future__ import annotations

import base64
import math
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from bson import ObjectId
from bson.binary import Binary

from reactor import job_view, model

MAX_DEPTH = 100


def plain(value: Any, depth: int = 0) -> Any:
    """``value`` with every BSON type replaced by its JSON form."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, datetime):
        aware = value if value.tzinfo else value.replace(tzinfo=UTC)
        return aware.astimezone(UTC).isoformat().replace("+00:00", "Z")
    if depth > MAX_DEPTH:
        return str(value)
    if isinstance(value, Mapping):
        return {str(k): plain(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(item, depth + 1) for item in value]
    if isinstance(value, bytes | Binary):
        return base64.b64encode(bytes(value)).decode()
    if isinstance(value, ObjectId):
        return str(value)
    return str(value)


def job(doc: Mapping[str, Any]) -> dict[str, Any]:
    """A job document as the API shows it: ``_id`` as a string, ``status`` never missing."""
    shown = dict(plain(doc))
    shown[model.STATUS] = job_view.status_of(doc)
    return shown
