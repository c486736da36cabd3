"""mongo-reactor: MongoDB job documents in, result documents out."""

from reactor.errors import (
    InputError,
    InvalidArguments,
    JobError,
    ReactorError,
    Retry,
)
from reactor.handler import JobContext, Runs, handler

__all__ = [
    "InputError",
    "InvalidArguments",
    "JobContext",
    "JobError",
    "ReactorError",
    "Retry",
    "Runs",
    "handler",
]
__version__ = "0.1.0"
