"""Reply documents: success and error shapes, and the error the command handlers raise."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bson.errors import BSONError
from pymongo.errors import OperationFailure

from reactor.errors import ReactorError

Doc = dict[str, Any]

CODE_NAMES: dict[int, str] = {
    1: "InternalError",
    2: "BadValue",
    9: "FailedToParse",
    6: "HostUnreachable",
    7: "HostNotFound",
    11: "UserNotFound",
    13: "Unauthorized",
    14: "TypeMismatch",
    16: "InvalidLength",
    20: "IllegalOperation",
    26: "NamespaceNotFound",
    27: "IndexNotFound",
    28: "PathNotViable",
    52: "DollarPrefixedFieldName",
    53: "InvalidIdField",
    54: "NotSingleValueField",
    56: "EmptyFieldName",
    66: "ImmutableField",
    67: "CannotCreateIndex",
    72: "InvalidOptions",
    40: "ConflictingUpdateOperators",
    43: "CursorNotFound",
    47: "NoMatchingDocument",
    48: "NamespaceExists",
    50: "MaxTimeMSExpired",
    59: "CommandNotFound",
    73: "InvalidNamespace",
    79: "UnknownReplWriteConcern",
    85: "IndexOptionsConflict",
    86: "IndexKeySpecsConflict",
    63: "StaleShardVersion",
    89: "NetworkTimeout",
    100: "UnsatisfiableWriteConcern",
    91: "ShutdownInProgress",
    112: "WriteConflict",
    133: "FailedToSatisfyReadPreference",
    134: "ReadConcernMajorityNotAvailableYet",
    150: "StaleEpoch",
    171: "CannotIndexParallelArrays",
    189: "PrimarySteppedDown",
    216: "ElectionInProgress",
    234: "RetryChangeStream",
    238: "NotImplemented",
    251: "NoSuchTransaction",
    260: "InvalidResumeToken",
    262: "ExceededTimeLimit",
    280: "ChangeStreamFatalError",
    286: "ChangeStreamHistoryLost",
    9001: "SocketException",
    10058: "LegacyNotPrimary",
    10107: "NotWritablePrimary",
    10334: "BSONObjectTooLarge",
    11000: "DuplicateKey",
    11600: "InterruptedAtShutdown",
    11602: "InterruptedDueToReplStateChange",
    13113: "MergeStageNoMatchingDocument",
    13388: "StaleConfig",
    13435: "NotPrimaryNoSecondaryOk",
    13436: "NotPrimaryOrSecondary",
}


def code_name(code: int) -> str:
    """The server's name for an error code (``Location<code>`` when the double does not know it)."""
    return CODE_NAMES.get(code, f"Location{code}")


class CommandFailed(ReactorError):
    """A handler's way to answer ``{ok: 0, code, codeName, errmsg}``; never leaves the double."""

    def __init__(
        self, code: int, message: str, *, labels: Sequence[str] = (), extra: Doc | None = None
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.labels = tuple(labels)
        self.extra = extra or {}

    def reply(self) -> Doc:
        return {**error_reply(self.code, self.message, self.labels), **self.extra}


def error_reply(code: int, message: str, labels: Sequence[str] = ()) -> Doc:
    reply: Doc = {"ok": 0.0, "errmsg": message, "code": code, "codeName": code_name(code)}
    if labels:
        reply["errorLabels"] = list(labels)
    return reply


def not_supported(what: str) -> CommandFailed:
    """The error for a valid MongoDB feature the double does not have."""
    return CommandFailed(238, f"{what} is not supported by the mongo-reactor test double")


UNSUPPORTED = 238  # NotImplemented: what the double (or mongomock beneath it) cannot do


def error_code(exc: Exception) -> tuple[int, str] | None:
    """``(code, message)`` for an error a command may raise on bad input; None for a bug.

    mongomock raises ``NotImplementedError`` for what it lacks: that becomes code 238, never a
    crash of the double.
    """
    if isinstance(exc, CommandFailed):
        return exc.code, exc.message
    if isinstance(exc, OperationFailure):
        return exc.code or 2, str(exc)
    if isinstance(exc, NotImplementedError):
        return UNSUPPORTED, f"not supported by the mongo-reactor test double: {exc}"
    if isinstance(exc, BSONError | TypeError | ValueError | KeyError | AttributeError):
        return 2, f"{type(exc).__name__}: {exc}"
    return None
