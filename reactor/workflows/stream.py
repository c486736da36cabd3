"""The change stream on ``workflows``: what clients ask of workflows, and finished workflows'
callbacks.

It matches inserts and replacements (a new workflow), ``cancel_requested: true``, a client's
``status: "queued"`` (a re-run; the reactor's own writes always change ``version`` and are left
out) and a pending ``callback`` (a workflow just finished). Like the jobs stream it only says
*when* to look: the advancer decides from the documents. Its resume token is not kept: a
(re)opened stream, a restart included, catches up by advancing every unfinished workflow.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from pymongo.asynchronous.collection import AsyncCollection

from reactor.callbacks.deliverer import Deliverer
from reactor.callbacks.model import CALLBACK, DeliveryState, Due, due_of
from reactor.store import Store
from reactor.stream import JobStream
from reactor.workflows import model
from reactor.workflows.advancer import Advancer

_UPDATED = "updateDescription.updatedFields"
_ENDS = ["drop", "dropDatabase", "rename", "invalidate"]

PIPELINE: list[dict[str, Any]] = [
    {
        "$match": {
            "$or": [
                {"operationType": {"$in": ["insert", "replace"]}},
                {"operationType": "update", f"{_UPDATED}.{model.CANCEL_REQUESTED}": True},
                {
                    "operationType": "update",
                    f"{_UPDATED}.{model.STATUS}": model.WorkflowStatus.QUEUED.value,
                    f"{_UPDATED}.{model.VERSION}": {"$exists": False},
                },
                {
                    "operationType": "update",
                    f"{_UPDATED}.{CALLBACK}.state": DeliveryState.PENDING.value,
                },
                {"operationType": {"$in": _ENDS}},
            ]
        }
    },
    {
        "$project": {
            "operationType": 1,
            "documentKey": 1,
            f"{_UPDATED}.{CALLBACK}": 1,
            f"fullDocument.{model.WORKFLOW_ID}": 1,
        }
    },
]


class Listener(Protocol):
    def changed(self, doc_id: Any, workflow_id: str | None, token: str) -> None: ...
    def callback_due(self, due: Due) -> None: ...
    def reopened(self) -> None: ...


def dispatch(change: Mapping[str, Any], listener: Listener) -> None:
    """Tell ``listener`` what one change event of ``workflows`` means."""
    kind = change.get("operationType")
    if kind in _ENDS:
        return  # the stream ends after these; reopening catches up
    fields = (change.get("updateDescription") or {}).get("updatedFields") or {}
    due = due_of(fields.get(CALLBACK)) if kind == "update" else None
    if due is not None:
        listener.callback_due(due)
        return
    doc_id = (change.get("documentKey") or {}).get("_id")
    workflow_id = (change.get("fullDocument") or {}).get(model.WORKFLOW_ID)
    token = (change.get("_id") or {}).get("_data")
    listener.changed(
        doc_id,
        workflow_id if isinstance(workflow_id, str) and workflow_id else None,
        str(token) if token is not None else repr(change.get("_id")),
    )


class WorkflowListener:
    """What the workflows stream's news means: advance, deliver, catch up."""

    def __init__(self, advancer: Advancer, deliverer: Deliverer) -> None:
        self._advancer, self._deliverer = advancer, deliverer

    def changed(self, doc_id: Any, workflow_id: str | None, token: str) -> None:
        self._advancer.changed(doc_id, workflow_id, token)

    def callback_due(self, due: Due) -> None:
        self._deliverer.offer(due)

    def reopened(self) -> None:
        self._advancer.catch_up()
        self._deliverer.forget()


def watch(
    store: Store,
    workflows: AsyncCollection[dict[str, Any]],
    advancer: Advancer,
    deliverer: Deliverer,
) -> JobStream:
    """The stream on ``workflows``: no resume token kept, the full document looked up (the
    event of an update must name its workflow)."""
    return JobStream(
        store,
        WorkflowListener(advancer, deliverer),
        collection=workflows,
        pipeline=PIPELINE,
        meaning=dispatch,
        token_key=None,
        full_document="updateLookup",
    )
