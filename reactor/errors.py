"""Every error the reactor raises, under one root.

::

    ReactorError
    ├── ConfigError                 a setting is invalid or MongoDB cannot be reached at startup
    │   └── IndexConflict           an existing index is in the way of one the reactor needs
    ├── RegistryError               entry points cannot be turned into handlers
    │   └── DuplicateHandler        two entry points claim one command name
    ├── StoreError                  MongoDB failed underneath a store operation
    │   ├── LeaseLost               the fencing check failed: another attempt owns the job now
    │   │   └── JobRequeued         a client set the running job back to queued: give the lease up
    │   └── CancelPending           a retry or hand-back met a cancel request: record that instead
    ├── PoolError                   the CPU pool itself is unusable (not one job's fault)
    │   └── PoolClosed
    ├── LeaseExpired                a job's lease was not renewed in time, so its execution was
    │                               stopped here (another reactor may run it; not charged)
    ├── JobError                    one job's failure; becomes a failed result, never a crash
    │   ├── InvalidJob              the job document itself is malformed (job_id, command, args)
    │   ├── UnknownCommand          no handler is registered for the command
    │   ├── InvalidArguments        args do not match the handler's signature
    │   │   └── PathEscape          a path argument leaves the job directory
    │   ├── InputError              the handler rejected its input (not an image, too large, ...)
    │   ├── ToolMissing             a program the handler needs is not installed on this machine
    │   │                           (tesseract); retryable: another reactor may have it
    │   ├── WorkdirUnavailable      a CPU worker cannot enter the job directory (missing,
    │   │                           denied); retryable: the next attempt creates it again
    │   ├── JobTimeout              the handler ran past its timeout and was stopped
    │   ├── WorkerCrashed           the worker process died under the job (exit code or signal)
    │   ├── ResultNotStorable       the return value cannot be stored as BSON
    │   ├── HandlerFailed           the handler raised an exception of its own
    │   ├── ResultRefused           MongoDB refused the result document (not a size problem)
    │   ├── PoisonJob               the job killed the reactor that ran it alone: quarantined
    │   └── GaveUp                  the job used up its attempts
    ├── Retry                       a signal, not a failure: run the job again later
    ├── WorkflowError               a workflow cannot go on; stored as the workflow's ``error``
    │   ├── InvalidWorkflow         the definition is malformed (a cycle, an unknown step or
    │   │                           command, a reference to a step that is not upstream): the
    │   │                           workflow fails at once and no job is created
    │   └── StepInputFailed         a step's input cannot be built from its upstream results
    │                               (a missing field, a for_each that is not a list, a batched
    │                               step that did not return one result per element)
    ├── ClientError                 a client's request cannot be done (CLI exits 4-6)
    │   ├── DuplicateJob            a job with that job_id exists already
    │   ├── JobNotFound             no job has that job_id
    │   ├── JobStateConflict        the job's status does not allow it (cancel a finished job,
    │   │                           retry a queued or running one)
    │   ├── DuplicateWorkflow       a workflow with that workflow_id exists already
    │   ├── WorkflowNotFound        no workflow has that workflow_id (or no template that name)
    │   ├── WorkflowStateConflict   the workflow's status does not allow it (cancel a finished
    │   │                           workflow, re-run one that did not fail)
    │   └── JobNotStorable          a submitted job cannot be stored as BSON (not UTF-8, ...)
    └── (reactor.testing)           the double's own: DoubleNotRunning (a fault hook before
                                    start()), UnknownServerVersion (a release it cannot pose
                                    as); CommandFailed and MalformedMessage never leave it

``JobError.retryable`` says whether running the same job again could succeed; it is stored in
the result's ``error`` field. ``Retry`` is raised by handlers to ask for another attempt.
"""

from __future__ import annotations

from datetime import datetime


class ReactorError(Exception):
    """Root of every error raised by mongo-reactor."""


class ConfigError(ReactorError):
    """A setting is invalid, or a required service cannot be reached at startup."""


class IndexConflict(ConfigError):
    """An existing index on ``jobs`` or ``results`` is in the way of one the reactor needs (a
    plain ``job_id_1`` where a unique one is needed): ``reactor migrate --apply`` replaces it."""


class RegistryError(ReactorError):
    """Entry points could not be turned into a consistent set of handlers."""


class DuplicateHandler(RegistryError):
    """Two entry points declare the same command name."""


class StoreError(ReactorError):
    """A MongoDB operation underneath the store failed."""


class LeaseLost(StoreError):
    """The claim's fence ``{_id, lease_owner, fence}`` no longer matches: another claim owns the
    job now (or a client took it away)."""


class JobRequeued(LeaseLost):
    """A client set the running job back to ``queued``: stop it, give the lease up so that it is
    claimed again, and record nothing for this execution."""


class CancelPending(StoreError):
    """The job was asked to be cancelled while a retry or hand-back of it was on its way.

    Putting it back to queued would undo the request; the caller records the cancellation.
    """

    def __init__(self, via: str, requested_at: datetime | None) -> None:
        super().__init__("a cancellation was requested meanwhile")
        self.via = via  # how it was asked for: "cancel_requested" or "status"
        self.requested_at = requested_at


class PoolError(ReactorError):
    """The CPU pool itself cannot serve work."""


class PoolClosed(PoolError):
    """Work was submitted to a CPU pool that has been shut down."""


class LeaseExpired(ReactorError):
    """A job's lease was not renewed before it could expire, so its execution here was stopped.

    Raised by the CPU pool when a worker stopped itself at its keep-alive deadline (its reactor was
    frozen or cut off from MongoDB). Not the job's fault: another reactor may now own the job.
    """


class JobError(ReactorError):
    """One job failed; the failure becomes that job's result and the service goes on."""

    retryable: bool = False

    def __init__(self, message: str, *, retryable: bool | None = None) -> None:
        super().__init__(message)
        if retryable is not None:
            self.retryable = retryable

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else ""

    def __reduce__(self) -> tuple[object, ...]:
        # Keep ``retryable`` when the error crosses a process boundary.
        return (_rebuild_job_error, (type(self), self.message, self.retryable))


def _rebuild_job_error(cls: type[JobError], message: str, retryable: bool) -> JobError:
    error = cls.__new__(cls)
    JobError.__init__(error, message, retryable=retryable)
    return error


class InvalidJob(JobError):
    """The job document is malformed: missing ``job_id`` or ``command``, ``args`` not a mapping."""


class UnknownCommand(JobError):
    """No handler is registered under the job's command."""


class InvalidArguments(JobError):
    """The job's ``args`` do not match the handler's signature and type hints."""


class PathEscape(InvalidArguments):
    """A path argument resolves outside the job's working directory."""


class InputError(JobError):
    """The handler rejected its input: not an image, corrupt, empty, over a size limit, ..."""


class ToolMissing(JobError):
    """A program or library the handler needs is not installed here (an environment problem,
    not the job's input). Retryable: another reactor of the fleet may have it."""

    retryable = True


class WorkdirUnavailable(JobError):
    """A CPU pool worker could not enter the job's directory: missing, not a directory, denied.

    Retryable: the next attempt prepares the directory again.
    """

    retryable = True


class JobTimeout(JobError):
    """The handler ran past its timeout and was stopped (its process killed, for CPU work), or,
    for a loop handler that blocked the event loop, could not be stopped and overran it."""

    def __init__(self, timeout_s: float, note: str | None = None) -> None:
        super().__init__(f"timeout after {timeout_s:g} s" + (f": {note}" if note else ""))
        self.timeout_s = timeout_s
        self.note = note

    def __reduce__(self) -> tuple[object, ...]:
        return (JobTimeout, (self.timeout_s, self.note))


class WorkerCrashed(JobError):
    """The worker process running the job died: exit code or signal in the message."""


class ResultNotStorable(JobError):
    """The handler's return value cannot be encoded as a BSON document."""


class HandlerFailed(JobError):
    """The handler raised an exception that is not a ``JobError``.

    ``type_name`` and ``remote_traceback`` keep the original exception's identity when it was
    raised in a worker process and could not itself be sent back.
    """

    def __init__(
        self,
        message: str,
        *,
        type_name: str,
        remote_traceback: str | None = None,
        retryable: bool = False,
    ) -> None:
        super().__init__(message, retryable=retryable)
        self.type_name = type_name
        self.remote_traceback = remote_traceback

    def __reduce__(self) -> tuple[object, ...]:
        return (
            _rebuild_handler_failed,
            (self.message, self.type_name, self.remote_traceback, self.retryable),
        )


def _rebuild_handler_failed(
    message: str, type_name: str, remote_traceback: str | None, retryable: bool
) -> HandlerFailed:
    return HandlerFailed(
        message, type_name=type_name, remote_traceback=remote_traceback, retryable=retryable
    )


class ResultRefused(JobError):
    """MongoDB refused to store the job's result document (validation, a conflicting result)."""


class PoisonJob(JobError):
    """The job's reactor died while it ran alone there after an earlier reactor death: poison."""


class GaveUp(JobError):
    """The job was claimed more times than its attempts allow (for example, it keeps crashing)."""


class Retry(ReactorError):
    """Raised by a handler to ask for another attempt; ``delay_s`` is a hint, not a promise."""

    def __init__(self, reason: str = "retry requested", *, delay_s: float = 0.0) -> None:
        super().__init__(reason)
        self.reason = reason
        self.delay_s = delay_s

    def __reduce__(self) -> tuple[object, ...]:
        return (_rebuild_retry, (self.reason, self.delay_s))


def _rebuild_retry(reason: str, delay_s: float) -> Retry:
    return Retry(reason, delay_s=delay_s)


class ClientError(ReactorError):
    """A client's request about a job cannot be done; the message says why and what to do."""


class DuplicateJob(ClientError):
    """A job with this ``job_id`` exists already."""


class JobNotFound(ClientError):
    """No job has this ``job_id``."""


class JobStateConflict(ClientError):
    """The job's status does not allow the request (cancel a finished job, retry a running one)."""


class WorkflowError(ReactorError):
    """A workflow cannot go on; its message is stored on the workflow document as ``error``.

    ``step`` names the step it concerns, when one does.
    """

    def __init__(self, message: str, *, step: str | None = None) -> None:
        super().__init__(message)
        self.step = step

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else ""


class InvalidWorkflow(WorkflowError):
    """The workflow's definition is malformed: it fails at once and no job is created."""


class StepInputFailed(WorkflowError):
    """A step's input cannot be built from the results of the steps before it."""


class DuplicateWorkflow(ClientError):
    """A workflow with this ``workflow_id`` exists already."""


class WorkflowNotFound(ClientError):
    """No workflow has this ``workflow_id`` (or no template has this name)."""


class WorkflowStateConflict(ClientError):
    """The workflow's status does not allow the request (cancel a finished one, re-run one that
    has not failed)."""


class JobNotStorable(ClientError):
    """A submitted job cannot be stored as a BSON document (text that is not UTF-8, a key with a
    NUL byte, an integer over 64 bits)."""
