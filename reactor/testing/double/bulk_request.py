"""The ``bulkWrite`` command's request, checked as MongoDB 8.0 parses and validates it.

Everything here fails the whole command before any op runs: an unknown field (40415), a missing
one (40414), a wrong type (14), no ops or more than 100,000 (16 ``InvalidLength``), an invalid
namespace (73), an op naming an ``nsInfo`` index that is not there (2). ``ops`` and ``nsInfo``
arrive as OP_MSG document sequences (the wire layer merges them into the body as arrays) or as
plain arrays; both read the same.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from reactor.testing.double.engine.catalog import check_name
from reactor.testing.double.replies import CommandFailed, Doc, not_supported

MAX_OPS = 100_000
KINDS = ("insert", "update", "delete")

_COMMAND_FIELDS = frozenset(
    {"bulkWrite", "ops", "nsInfo", "cursor", "bypassDocumentValidation", "ordered", "stmtId"}
    | {"stmtIds", "let", "errorsOnly"}
)
# Arguments every command accepts (MongoDB's generic_argument.idl, the ones drivers send).
_GENERIC_FIELDS = frozenset(
    {"apiVersion", "apiStrict", "apiDeprecationErrors", "maxTimeMS", "readConcern"}
    | {"writeConcern", "lsid", "txnNumber", "autocommit", "startTransaction", "comment"}
    | {"clientOperationKey", "txnRetryCounter", "maxTimeMSOpOnly", "rawData"}
)
_OP_FIELDS = {
    "insert": frozenset({"insert", "document"}),
    "update": frozenset(
        {"update", "filter", "multi", "updateMods", "upsert", "upsertSupplied", "arrayFilters"}
        | {"hint", "let", "constants", "collation", "sort", "return", "returnFields"}
    ),
    "delete": frozenset(
        {"delete", "filter", "multi", "hint", "let", "collation", "sort", "return"}
        | {"returnFields"}
    ),
}
_REQUIRED = {"insert": ("document",), "update": ("filter", "updateMods"), "delete": ("filter",)}
_DOCUMENT_FIELDS = ("document", "filter")
_NS_FIELDS = frozenset({"ns", "collectionUUID", "encryptionInformation"})
_BAD_DB_CHARACTERS = frozenset('/\\. "$\x00')


@dataclass(frozen=True)
class BulkOp:
    """One entry of ``ops``: its kind, the ``nsInfo`` index it names, the entry itself."""

    kind: str  # insert, update or delete
    ns_index: int
    spec: Doc


@dataclass(frozen=True)
class BulkRequest:
    ops: list[BulkOp]
    namespaces: list[tuple[str, str]]  # (database, collection) per nsInfo entry
    ordered: bool
    errors_only: bool
    batch_size: int | None  # None: every reply item that fits in 16 MiB


def parse_request(cmd: Doc) -> BulkRequest:
    """The request in ``cmd``; CommandFailed (failing the whole command) where MongoDB refuses."""
    for name in cmd:
        if name not in _COMMAND_FIELDS and name not in _GENERIC_FIELDS and name[:1] != "$":
            raise _unknown_field(f"bulkWrite.{name}")
    if cmd.get("let"):
        raise not_supported("bulkWrite with let")
    ops = [_op(entry) for entry in _array(cmd, "ops")]
    namespaces = [_namespace(entry) for entry in _array(cmd, "nsInfo")]
    if not 0 < len(ops) <= MAX_OPS:
        message = f"Write batch sizes must be between 1 and {MAX_OPS}. Got {len(ops)} operations."
        raise CommandFailed(16, message)
    _check_statement_ids(cmd, len(ops))
    for op in ops:
        if op.ns_index >= len(namespaces):
            message = f"BulkWrite ops entry {op.spec} has an invalid nsInfo index."
            raise CommandFailed(2, message)
    return BulkRequest(
        ops,
        namespaces,
        ordered=_bool(cmd, "ordered", default=True),
        errors_only=_bool(cmd, "errorsOnly", default=False),
        batch_size=_batch_size(cmd.get("cursor")),
    )


def _array(cmd: Doc, field: str) -> list[Any]:
    if field not in cmd:
        raise CommandFailed(
            40414, f"BSON field 'bulkWrite.{field}' is missing but a required field"
        )
    found = cmd[field]
    if not isinstance(found, list):
        raise _wrong_type(f"bulkWrite.{field}", found, "array")
    return found


def _op(entry: Any) -> BulkOp:
    if not isinstance(entry, dict):
        raise _wrong_type("bulkWrite.ops", entry, "object")
    kind = next((name for name in entry if name in KINDS), None)
    if kind is None:
        raise CommandFailed(40414, f"BulkWrite ops entry {entry} names no insert, update or delete")
    for name in entry:
        if name not in _OP_FIELDS[kind]:
            raise _unknown_field(f"bulkWrite.ops.{name}")
    for name in _REQUIRED[kind]:
        if name not in entry:
            message = f"BSON field 'bulkWrite.ops.{name}' is missing but a required field"
            raise CommandFailed(40414, message)
    index = entry[kind]
    if isinstance(index, bool) or not isinstance(index, int):
        raise _wrong_type(f"bulkWrite.ops.{kind}", index, "int")
    if index < 0:
        raise CommandFailed(
            51024, f"BSON field '{kind}' value must be >= 0, actual value '{index}'"
        )
    _check_types(entry)
    return BulkOp(kind, index, entry)


def _check_types(entry: Doc) -> None:
    for name in _DOCUMENT_FIELDS:
        if name in entry and not isinstance(entry[name], dict):
            raise _wrong_type(f"bulkWrite.ops.{name}", entry[name], "object")
    if "updateMods" in entry and not isinstance(entry["updateMods"], dict | list):
        raise _wrong_type("bulkWrite.ops.updateMods", entry["updateMods"], "object or array")
    for name in ("multi", "upsert"):
        if name in entry and not isinstance(entry[name], bool):
            raise _wrong_type(f"bulkWrite.ops.{name}", entry[name], "bool")


def _namespace(entry: Any) -> tuple[str, str]:
    if not isinstance(entry, dict):
        raise _wrong_type("bulkWrite.nsInfo", entry, "object")
    for name in entry:
        if name not in _NS_FIELDS:
            raise _unknown_field(f"bulkWrite.nsInfo.{name}")
    for name in ("collectionUUID", "encryptionInformation"):
        if name in entry:
            raise not_supported(f"bulkWrite nsInfo with {name}")
    ns = entry.get("ns")
    if ns is None:
        raise CommandFailed(
            40414, "BSON field 'bulkWrite.nsInfo.ns' is missing but a required field"
        )
    if not isinstance(ns, str):
        raise _wrong_type("bulkWrite.nsInfo.ns", ns, "string")
    db, _, coll = ns.partition(".")
    if not db or len(db) >= 64 or _BAD_DB_CHARACTERS & set(db) or not coll:
        raise CommandFailed(73, f"Invalid namespace specified for bulkWrite: '{ns}'")
    try:
        check_name(db, coll)
    except CommandFailed as exc:
        raise CommandFailed(73, f"Invalid namespace specified for bulkWrite: '{ns}'") from exc
    return db, coll


def _check_statement_ids(cmd: Doc, count: int) -> None:
    if "stmtId" in cmd and "stmtIds" in cmd:
        raise CommandFailed(72, "May not specify both stmtId and stmtIds in bulkWrite command.")
    ids = cmd.get("stmtIds")
    if isinstance(ids, list) and len(ids) != count:
        message = f"Number of statement ids must match the number of batch entries. Got {len(ids)}"
        raise CommandFailed(16, f"{message} statement ids but {count} operations.")


def _bool(cmd: Doc, field: str, *, default: bool) -> bool:
    value = cmd.get(field, default)
    if not isinstance(value, bool):
        raise _wrong_type(f"bulkWrite.{field}", value, "bool")
    return value


def _batch_size(cursor: Any) -> int | None:
    if cursor is None:
        return None
    size = cursor.get("batchSize") if isinstance(cursor, dict) else None
    if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 0):
        raise CommandFailed(51024, "BSON field 'batchSize' value must be >= 0")
    return size or None  # 0 means no limit, as on MongoDB


def _unknown_field(path: str) -> CommandFailed:
    return CommandFailed(40415, f"BSON field '{path}' is an unknown field.")


def _wrong_type(path: str, value: Any, expected: str) -> CommandFailed:
    got = type(value).__name__
    return CommandFailed(14, f"BSON field '{path}' is the wrong type '{got}', expected {expected}")
