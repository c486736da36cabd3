"""Databases and their collections; a collection exists until it is dropped, empty or not."""

from __future__ import annotations

from reactor.testing.double.engine.collection import Collection
from reactor.testing.double.replies import CommandFailed, Doc


class Catalog:
    """Every collection of one double, by database and name, in creation order."""

    def __init__(self) -> None:
        self._databases: dict[str, dict[str, Collection]] = {}

    def get(self, db: str, name: str) -> Collection | None:
        return self._databases.get(db, {}).get(name)

    def ensure(self, db: str, name: str) -> Collection:
        """The collection, created implicitly (as an insert or createIndexes does) if missing."""
        check_name(db, name)
        collections = self._databases.setdefault(db, {})
        found = collections.get(name)
        if found is None:
            found = collections[name] = Collection(db, name)
        return found

    def create(self, db: str, name: str, options: Doc) -> Collection:
        """An explicit ``create``: 48 NamespaceExists if the collection is already there."""
        if self.get(db, name) is not None:
            raise CommandFailed(48, f"Collection {db}.{name} already exists.")
        coll = self.ensure(db, name)
        coll.options = options
        return coll

    def drop(self, db: str, name: str) -> Collection | None:
        collections = self._databases.get(db, {})
        dropped = collections.pop(name, None)
        if not collections:
            self._databases.pop(db, None)
        return dropped

    def rename(self, db: str, name: str, to: str) -> None:
        """Move collection ``name`` (records, indexes) to ``to`` in the same database.

        A collection already at ``to`` is dropped.
        """
        collections = self._databases[db]
        moving = collections.pop(name)
        collections.pop(to, None)
        moving.name = to
        collections[to] = moving

    def drop_database(self, db: str) -> list[str]:
        return list(self._databases.pop(db, {}))

    def database_names(self) -> list[str]:
        return list(self._databases)

    def collection_names(self, db: str) -> list[str]:
        return list(self._databases.get(db, {}))

    def collections(self) -> list[Collection]:
        return [coll for colls in self._databases.values() for coll in colls.values()]


def check_name(db: str, name: str) -> None:
    if not name or name.startswith(".") or name.endswith(".") or "$" in name or "\x00" in name:
        raise CommandFailed(73, f"Invalid collection name: {db}.{name}")
