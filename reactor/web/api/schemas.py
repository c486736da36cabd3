"""The request and response bodies of ``/api``, as the OpenAPI document shows them."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from reactor.model import STATUS_VALUES

StatusName = Literal["queued", "running", "succeeded", "failed", "cancelled"]
assert set(StatusName.__args__) == set(STATUS_VALUES)  # type: ignore[attr-defined]

JOB_ID_MAX_CHARS = 512
COMMAND_MAX_CHARS = 200


class NewJob(BaseModel):
    """A job to submit; ``args`` are checked against the handler's signature first (its JSON
    Schema: ``GET /api/handlers/{command}``), 422 when they do not fit."""

    model_config = ConfigDict(extra="forbid")

    command: str = Field(min_length=1, max_length=COMMAND_MAX_CHARS)
    args: dict[str, Any] = Field(default_factory=dict)
    job_id: str | None = Field(
        None,
        min_length=1,
        max_length=JOB_ID_MAX_CHARS,
        pattern=r"^[^/]+$",
        description="Unique; chosen for you when left out. No '/' (it names a URL path).",
    )
    priority: int | None = Field(None, ge=-(2**31), le=2**31 - 1)
    run_at: datetime | None = Field(None, description="Not started before this time.")


class JobOut(BaseModel):
    """A job document, BSON values as JSON (dates ISO-8601 UTC, ids as strings)."""

    model_config = ConfigDict(extra="allow")

    job_id: Any = None
    command: Any = None
    status: StatusName | str


class JobDetail(BaseModel):
    job: JobOut
    result: dict[str, Any] | None = Field(
        None, description="The latest run's result document, when it has one."
    )
    progress: dict[str, Any] | None = None
    history: list[dict[str, Any]] = Field(
        default_factory=list, description="Earlier runs, oldest first (from the result)."
    )
    links: dict[str, str]


class JobPage(BaseModel):
    jobs: list[JobOut]
    next_cursor: str | None = Field(None, description="Pass as cursor for the next page.")


class JobChanged(BaseModel):
    job: JobOut


class LogPage(BaseModel):
    job_id: str
    run: int
    lines: list[dict[str, Any]]
    next_line: int = Field(description="Pass as after to read on.")


class HandlerSummary(BaseModel):
    name: str
    runs: Literal["loop", "thread", "process"]
    version: str | None
    source: str


class HandlerDetail(HandlerSummary):
    distribution: str | None
    timeout_s: float
    max_concurrency: int | None = Field(description="Jobs of it at once per reactor (null: any).")
    retry: dict[str, Any]
    wants_context: bool
    path_args: list[str] = Field(description="Arguments resolved inside the job directory.")
    args_schema: dict[str, Any] = Field(description="JSON Schema of the job's args.")


class HandlerList(BaseModel):
    handlers: list[HandlerSummary]


class WorkerOut(BaseModel):
    model_config = ConfigDict(extra="allow")

    name: str
    host: str
    pid: int
    version: str
    handlers: list[str]
    in_flight: int
    started_at: str
    last_seen: str
    samples: list[dict[str, Any]] | None = None


class WorkerList(BaseModel):
    workers: list[WorkerOut]


# -- workflows and templates ------------------------------------------------------------------

WorkflowStatusName = Literal["queued", "running", "succeeded", "failed", "cancelled"]
OcrdState = Literal["QUEUED", "RUNNING", "SUCCESS", "FAILED", "CANCELLED"]
WORKFLOW_ID_PATTERN = r"^[^/]+$"


class NewStep(BaseModel):
    """One step: ``command`` with ``args`` once its ``after`` steps succeeded; with
    ``for_each``, one job per element (per ``batch`` elements)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=64)
    command: str = Field(min_length=1, max_length=COMMAND_MAX_CHARS)
    args: dict[str, Any] = Field(default_factory=dict)
    after: list[str] = Field(default_factory=list, max_length=200)
    for_each: Any = Field(None, description='A list, or {"$result": "step.path"}.')
    batch: int | None = Field(None, ge=1, le=100_000)


class NewWorkflow(BaseModel):
    """A workflow to submit: what ``reactor workflow submit`` inserts (docs/workflows.md)."""

    model_config = ConfigDict(extra="forbid")

    workflow_id: str | None = Field(
        None,
        min_length=1,
        max_length=JOB_ID_MAX_CHARS,
        pattern=WORKFLOW_ID_PATTERN,
        description="Unique; chosen for you when left out. No '/' (it names a URL path).",
    )
    steps: list[NewStep] = Field(min_length=1, max_length=200)
    output: Any = Field(None, description="What it returns ($result references).")
    callback_url: str | None = Field(None, max_length=2048)
    priority: int | None = Field(None, ge=-(2**31), le=2**31 - 1)


class WorkflowOut(BaseModel):
    """A workflow document, BSON values as JSON."""

    model_config = ConfigDict(extra="allow")

    workflow_id: Any = None
    status: WorkflowStatusName | str


class StepOut(BaseModel):
    model_config = ConfigDict(extra="allow")

    name: str
    command: Any = None
    after: list[Any] = Field(default_factory=list)
    status: str = Field(description="pending until its jobs exist, then their aggregate.")


class WorkflowDetail(BaseModel):
    workflow: WorkflowOut
    ocrd_state: OcrdState = Field(description="status as OCR-D's processing server names it.")
    steps: list[StepOut]
    jobs: list[dict[str, Any]] = Field(description="Its step jobs by job_id (a bounded page).")
    more_jobs: bool = Field(description="More step jobs exist than are listed.")
    links: dict[str, str]


class WorkflowPage(BaseModel):
    workflows: list[WorkflowOut]
    next_cursor: str | None = Field(None, description="Pass as cursor for the next page.")


class WorkflowChanged(BaseModel):
    workflow: WorkflowOut


class TemplateIn(BaseModel):
    """A stored workflow template: steps with ``{"$param": name}`` placeholders."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(None, description="The path's name; may be left out.")
    description: str | None = Field(None, max_length=10_000)
    params: dict[str, Any] = Field(default_factory=dict)
    steps: list[dict[str, Any]] = Field(min_length=1, max_length=200)
    output: Any = None


class TemplateOut(BaseModel):
    model_config = ConfigDict(extra="allow")

    name: str


class TemplateSummary(BaseModel):
    name: Any = None
    description: Any = None
    source: Literal["stored", "shipped"]


class TemplateList(BaseModel):
    templates: list[TemplateSummary]


class TemplateRun(BaseModel):
    """Run a template as a new workflow."""

    model_config = ConfigDict(extra="forbid")

    params: dict[str, Any] = Field(default_factory=dict)
    workflow_id: str | None = Field(
        None, min_length=1, max_length=JOB_ID_MAX_CHARS, pattern=WORKFLOW_ID_PATTERN
    )
    callback_url: str | None = Field(None, max_length=2048)
