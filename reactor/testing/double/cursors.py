"""Open cursors by id, batching by count and size, and the cursor reply shape."""

from __future__ import annotations

import itertools
import random
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass

import bson
from bson.int64 import Int64

from reactor.testing.double.changestream import ChangeStream
from reactor.testing.double.replies import CommandFailed, Doc

DEFAULT_FIRST_BATCH = 101
MAX_BATCH_BYTES = 16 * 1024 * 1024


@dataclass
class QueryCursor:
    """The rest of a find, aggregate or list result, served by getMore."""

    namespace: str
    docs: deque[Doc]

    def take(self, batch_size: int | None) -> list[Doc]:
        """Up to ``batch_size`` documents (all when None), at most ~16 MiB of them."""
        batch: list[Doc] = []
        size = 0
        while self.docs and (batch_size is None or len(batch) < batch_size):
            size += len(bson.encode(self.docs[0]))
            if batch and size > MAX_BATCH_BYTES:
                break
            batch.append(self.docs.popleft())
        return batch


Cursor = QueryCursor | ChangeStream


class CursorTable:
    """Cursors of every connection, so a getMore may arrive on any of them."""

    def __init__(self) -> None:
        self._cursors: dict[int, Cursor] = {}
        self._ids = itertools.count(random.randrange(1 << 40, 1 << 50))

    def add(self, cursor: Cursor) -> int:
        cursor_id = next(self._ids)
        self._cursors[cursor_id] = cursor
        return cursor_id

    def get(self, cursor_id: int) -> Cursor:
        cursor = self._cursors.get(cursor_id)
        if cursor is None:
            raise CommandFailed(43, f"cursor id {cursor_id} not found")
        return cursor

    def find(self, cursor_id: object) -> Cursor | None:
        """The cursor with this id, or None (also for an id that is not an int)."""
        return self._cursors.get(cursor_id) if isinstance(cursor_id, int) else None

    def discard(self, cursor_id: int) -> bool:
        return self._cursors.pop(cursor_id, None) is not None


def first_batch(
    table: CursorTable,
    namespace: str,
    docs: Iterable[Doc],
    batch_size: int | None,
    *,
    single_batch: bool = False,
) -> Doc:
    """Reply to a command that opens a cursor; the rest stays in ``table`` for getMore."""
    cursor = QueryCursor(namespace, deque(docs))
    batch = cursor.take(DEFAULT_FIRST_BATCH if batch_size is None else batch_size)
    keep = cursor.docs and not single_batch
    cursor_id = table.add(cursor) if keep else 0
    return cursor_reply(namespace, cursor_id, batch, "firstBatch")


def cursor_reply(
    namespace: str, cursor_id: int, batch: list[Doc], key: str, resume_token: Doc | None = None
) -> Doc:
    cursor: Doc = {"id": Int64(cursor_id), "ns": namespace, key: batch}
    if resume_token is not None:
        cursor["postBatchResumeToken"] = resume_token
    return {"cursor": cursor, "ok": 1.0}
