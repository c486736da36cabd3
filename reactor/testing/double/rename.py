"""``renameCollection`` within one database: the collection, its indexes and its UUID move.

As on MongoDB the command runs against ``admin`` and names full namespaces; a missing source
answers 26, an existing target 48 unless ``dropTarget`` (then the target is dropped by the
rename, and the ``rename`` event names its UUID), renaming onto itself 20. Streams on the
source see ``rename`` then ``invalidate``; streams on the target see no event for the rename
(MongoDB emits none there either, SERVER-53478) and see later writes. Renaming across
databases (a copy on MongoDB, with its own events) answers 238.
"""

from __future__ import annotations

from typing import Any

from reactor.testing.double.context import Context, command
from reactor.testing.double.ddl_events import record_rename
from reactor.testing.double.engine.catalog import check_name
from reactor.testing.double.replies import CommandFailed, Doc, not_supported


@command("renameCollection")
async def rename_collection(ctx: Context, cmd: Doc) -> Doc:
    if ctx.db != "admin":
        raise CommandFailed(13, "renameCollection may only be run against the admin database.")
    source_db, source = _namespace(cmd.get("renameCollection"))
    to_db, to = _namespace(cmd.get("to"))
    if to_db != source_db:
        raise not_supported("renameCollection across databases")
    catalog = ctx.backend.catalog
    moving = catalog.get(source_db, source)
    if moving is None:
        raise CommandFailed(26, f"Source collection {source_db}.{source} does not exist")
    if source == to:
        raise CommandFailed(20, "Can't rename a collection to itself")
    replaced = catalog.get(to_db, to) is not None
    if replaced and not cmd.get("dropTarget"):
        raise CommandFailed(48, "target namespace exists")
    catalog.rename(source_db, source, to)
    source_ctx = Context(ctx.backend, source_db, ctx.connection_id)
    record_rename(source_ctx, source, to_db, to, drop_target=replaced)
    return {}


def _namespace(value: Any) -> tuple[str, str]:
    if not isinstance(value, str) or "." not in value:
        raise CommandFailed(73, f"Invalid namespace specified '{value}'")
    db, name = value.split(".", 1)
    if not db:
        raise CommandFailed(73, f"Invalid namespace specified '{value}'")
    check_name(db, name)
    return db, name
