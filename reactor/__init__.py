"""mongo-reactor: MongoDB job documents in, result documents out."""

from reactor.errors import (
    InputError,
    InvalidArguments,
    JobError,
    ReactorError,
    Retry,
)
from reactor.handler import JobContext, Runs, handler
from reactor.retry import RetryPolicy

__all__ = [
    "InputError",
    "InvalidArguments",
    "JobContext",
    "JobError",
    "ReactorError",
    "Retry",
    "RetryPolicy",
    "Runs",
    "handler",
]
__version__ = "0.1.0"
