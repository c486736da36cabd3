"""A callback's delivery state, on the job or workflow document that asked for it (``callback``).

::

    "callback": {"id": "scan-42:1", "state": "pending", "attempts": 0, "due_at": <date>,
                 "owner": "host-a:17/ab12cd34", "last_status": null, "last_error": null,
                 "delivered_at": null, "updated_at": <date>}

``state`` is ``pending`` (to be sent at ``due_at``), ``delivered`` (a 2xx answer, at
``delivered_at``), ``failed`` (``REACTOR_CALLBACK_MAX_ATTEMPTS`` attempts without one) or
``refused`` (the URL is not http(s), or its host is not in ``REACTOR_CALLBACK_ALLOWED_HOSTS``:
never sent). ``id`` is the same on every attempt of one delivery and new for each run, so a
receiver can drop duplicates. ``owner`` is the reactor that should send it next: the others wait
a grace period (``REACTOR_LEASE_S``) past ``due_at`` before they take it over. While an attempt
is under way, ``due_at`` is when it is given up for lost.

The final status of a job with a ``callback_url`` writes a fresh pending ``callback`` in the same
update (the change event every reactor sees); so does the write that finishes a workflow.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

CALLBACK_URL = "callback_url"
CALLBACK = "callback"
STATE = f"{CALLBACK}.state"
DUE_AT = f"{CALLBACK}.due_at"
OWNER = f"{CALLBACK}.owner"
ATTEMPTS = f"{CALLBACK}.attempts"
ID = f"{CALLBACK}.id"


class DeliveryState(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"
    REFUSED = "refused"


def pending(delivery_id: str, owner: str, now: datetime) -> dict[str, Any]:
    """A new delivery, due now, to be sent by ``owner``."""
    return {
        "id": delivery_id,
        "state": DeliveryState.PENDING.value,
        "attempts": 0,
        "due_at": now,
        "owner": owner,
        "last_status": None,
        "last_error": None,
        "delivered_at": None,
        "updated_at": now,
    }


def job_delivery_id(job_id: str, run: int) -> str:
    return f"{job_id}:{run}"


def workflow_delivery_id(workflow_id: str, run: int) -> str:
    return f"workflow:{workflow_id}:{run}"


@dataclass(frozen=True)
class Due:
    """A pending delivery as a change event or a look-up shows it: when, and whose."""

    due_at: datetime
    owner: str | None


def due_of(callback: Any) -> Due | None:
    """The pending delivery in a ``callback`` value (an event's field, a document's), if any."""
    if not isinstance(callback, Mapping) or callback.get("state") != DeliveryState.PENDING:
        return None
    due_at = callback.get("due_at")
    if not isinstance(due_at, datetime):
        return None
    owner = callback.get("owner")
    aware = due_at if due_at.tzinfo else due_at.replace(tzinfo=UTC)
    return Due(aware, owner if isinstance(owner, str) else None)
