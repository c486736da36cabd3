"""A change-stream ``getMore``: answered at once, the moment a later event is written, or idle.

A waiting getMore subscribes to the event log. The next write through any connection calls it
back from inside that write's own command: the batch is collected there and its reply written
to the waiting connection's socket before the writer's reply, so delivery never waits for the
event loop to come round to the waiting connection (nor behind the commands queued on others).
When the wait (``maxTimeMS``) runs out, the reply is an empty batch and a fresh high-water mark.
"""

from __future__ import annotations

import asyncio

from reactor.testing.double.changestream import ChangeStream
from reactor.testing.double.context import ANSWERED, Backend, Context
from reactor.testing.double.cursors import cursor_reply
from reactor.testing.double.labels import with_server_labels
from reactor.testing.double.replies import CommandFailed, Doc, error_reply


async def next_batch(
    ctx: Context, cursor_id: int, stream: ChangeStream, batch_size: int | None, max_wait_s: float
) -> Doc:
    """The reply to a getMore on ``stream`` (``ANSWERED`` if it was already sent early)."""
    backend = ctx.backend
    await backend.faults.flowing()
    reply = _batch_reply(backend, cursor_id, stream, batch_size, idle=False)
    if reply is not None:
        return reply
    answered: asyncio.Future[Doc] = asyncio.get_running_loop().create_future()

    def on_event() -> None:
        if answered.done() or backend.faults.stalled:
            return
        try:
            early = _batch_reply(backend, cursor_id, stream, batch_size, idle=False)
        except Exception as exc:  # a bug in the double must not fail the writer's command
            early = error_reply(1, f"test double internal error: {type(exc).__name__}: {exc}")
        if early is None:
            return
        backend.log.unsubscribe(on_event)
        if ctx.respond_now is not None:
            ctx.respond_now(early)
            early = ANSWERED
        answered.set_result(early)

    backend.log.subscribe(on_event)
    try:
        return await asyncio.wait_for(answered, max_wait_s)
    except TimeoutError:
        pass
    finally:
        backend.log.unsubscribe(on_event)
    await backend.faults.flowing()
    idle = _batch_reply(backend, cursor_id, stream, batch_size, idle=True)
    assert idle is not None
    return idle


def _batch_reply(
    backend: Backend, cursor_id: int, stream: ChangeStream, batch_size: int | None, *, idle: bool
) -> Doc | None:
    """The reply with the events available now; None if there are none and not ``idle``."""
    try:
        batch = stream.collect(backend.log, backend.lookup, batch_size)
    except CommandFailed as exc:
        backend.cursors.discard(cursor_id)  # MongoDB kills a cursor whose getMore failed
        return with_server_labels(exc.reply(), change_stream=True)
    if not batch and not stream.invalidated:
        if not idle:
            return None
        stream.position = max(stream.position, backend.log.advance())
    if stream.invalidated:
        backend.cursors.discard(cursor_id)
        cursor_id = 0
    return cursor_reply(stream.namespace, cursor_id, batch, "nextBatch", stream.position.token())
