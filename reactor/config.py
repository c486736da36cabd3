"""The settings: one frozen object, the only place the environment is read.

Every field is a ``REACTOR_<NAME>`` environment variable and a ``--<name>`` CLI flag of
``reactor run``; a flag wins over the variable. An invalid value raises :class:`ConfigError`
naming the variable.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from reactor.errors import ConfigError

ENV_PREFIX = "REACTOR_"


def _default_worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _default_cpu_workers() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1)


class Settings(BaseSettings):
    """What an operator can set. Units are in the names."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, frozen=True, extra="forbid")

    mongo_uri: str = Field(
        "mongodb://localhost:27017/?replicaSet=rs0",
        description="MongoDB connection string (a replica set: change streams need one).",
    )
    db: str = Field("reactor", description="Database holding the jobs and results.")
    jobs_collection: str = Field("jobs", description="Collection clients insert jobs into.")
    results_collection: str = Field("results", description="Collection results are written to.")
    workflows_collection: str = Field(
        "workflows", description="Collection clients insert workflows into."
    )
    templates_collection: str = Field(
        "workflow_templates", description="Collection of stored workflow templates, by name."
    )
    jobs_root: Path = Field(Path("/shared/jobs"), description="Parent of each job's directory.")
    max_jobs: int = Field(16, ge=1, description="Jobs in flight at once, all handlers together.")
    cpu_workers: int = Field(
        default_factory=_default_cpu_workers,
        ge=1,
        description="CPU pool processes (default: cores).",
    )
    lease_s: float = Field(30.0, gt=0, description="How long a claim lasts without a heartbeat.")
    sweep_s: float = Field(
        0.0, ge=0, description="Period of the expired-lease sweep (0: half of lease_s)."
    )
    job_timeout_s: float = Field(600.0, gt=0, description="Default handler timeout.")
    max_attempts: int = Field(
        3, ge=1, description="Attempts per run before a job fails for good (handlers may override)."
    )
    retry_backoff_s: float = Field(
        1.0, ge=0, description="Pause before the first retry; doubled for each further one."
    )
    retry_max_backoff_s: float = Field(300.0, ge=0, description="Longest pause between retries.")
    worker_name: str = Field(
        default_factory=_default_worker_name, min_length=1, description="Owner written on claims."
    )
    connect_timeout_s: float = Field(
        10.0, gt=0, description="How long startup waits for MongoDB before giving up."
    )
    mongo_timeout_s: float = Field(
        10.0,
        gt=0,
        description="Bound of every MongoDB operation the reactor makes (client-side timeout).",
    )
    log_format: Literal["auto", "json", "console"] = Field(
        "auto", description="json, console, or auto (console on a terminal, json otherwise)."
    )
    log_level: Literal["debug", "info", "warning", "error"] = Field("info", description="Level.")
    log_locals: bool = Field(
        False,
        description="Show local variables in logged tracebacks (debugging only: they hold job "
        "arguments).",
    )
    log_max_line_bytes: int = Field(
        2048,
        ge=512,
        description="Longest log line; longer strings and tracebacks are truncated, noting "
        "their original size.",
    )
    http_host: str = Field("0.0.0.0", description="Address of /healthz, /readyz and /metrics.")
    http_port: int = Field(8080, ge=0, le=65535, description="Port of the endpoints (0: off).")
    ready_stall_s: float = Field(
        60.0, gt=0, description="/readyz fails when the stream has not advanced for this long."
    )
    pool_max_tasks: int = Field(100, ge=1, description="Tasks before a CPU worker is replaced.")
    pool_max_rss_mb: int = Field(1024, ge=16, description="Worker memory that forces a restart.")
    max_image_pixels: int = Field(
        100_000_000, ge=1, description="Largest image a vision/OCR job may decode."
    )
    handler_modules: str = Field(
        "",
        description="Extra handler modules: module names or .py paths, comma separated; "
        "each public top-level function becomes a command of its own name.",
    )
    handler_import_timeout_s: float = Field(
        10.0,
        gt=0,
        description="How long reactor run and reactor handlers wait for one handler module (or "
        "entry point) to import before they stop with exit code 2, naming it: a module that "
        "runs a loop at import time never finishes.",
    )
    drain_s: float = Field(
        60.0,
        ge=0,
        description="On SIGTERM, how long running jobs may finish before they are handed back.",
    )
    liveness_s: float = Field(
        60.0,
        gt=0,
        description="/healthz fails when the claim loop, the stream or recording has made no "
        "progress for this long while work waits, or a MongoDB call hangs past its timeout.",
    )
    callback_secret: str = Field(
        "",
        description="Key of the HMAC-SHA256 signature of callbacks (empty: sent unsigned).",
    )
    callback_allowed_hosts: str = Field(
        "",
        description="Hosts callbacks may go to, comma separated (*.example.com for subdomains); "
        "empty allows every host.",
    )
    callback_timeout_s: float = Field(10.0, gt=0, description="Bound of one callback request.")
    callback_max_attempts: int = Field(
        10, ge=1, description="Attempts to deliver one callback before it is given up."
    )
    callback_backoff_s: float = Field(
        1.0,
        ge=0,
        description="Pause before a callback's second attempt; doubled for each further one.",
    )
    callback_max_backoff_s: float = Field(
        600.0, ge=0, description="Longest pause between a callback's attempts."
    )
    stray_sweep_s: float = Field(
        3600.0,
        gt=0,
        description="How often large results' GridFS files that no result refers to any more "
        "are looked for and deleted (also once at startup).",
    )
    api_token: str = Field(
        "",
        repr=False,
        description="Bearer token of /api and the dashboard (/ui); empty: both answer 404.",
    )
    api_read_token: str = Field(
        "",
        repr=False,
        description="A second, read-only token: GET routes only (empty: none).",
    )
    api_max_body_bytes: int = Field(
        1_000_000, ge=1024, description="Largest request body /api and /ui accept (413 above)."
    )
    api_timeout_s: float = Field(
        10.0,
        gt=0,
        le=300,
        description="Bound on the MongoDB work of one /api or /ui request; past it (MongoDB "
        "away) the request answers 503 mongodb_unavailable instead of waiting.",
    )
    ui_secure_cookie: bool = Field(
        False,
        description="Mark the dashboard's session cookie Secure (on when TLS ends in a proxy in "
        "front; requests that arrive over HTTPS get it anyway).",
    )
    job_log_max_bytes: int = Field(
        1_000_000,
        ge=0,
        description="Largest log kept per run of a job in its directory (0: keep none); lines "
        "past it are dropped, one note says so.",
    )
    claim_grace_s: float = Field(
        0.5,
        ge=0,
        description="A new job another live reactor is preferred for is claimed here only if "
        "still unclaimed after this long (0: every reactor races for every job).",
    )
    fleet_heartbeat_s: float = Field(
        10.0, gt=0, description="Period of this reactor's entry in reactor_workers."
    )
    fleet_ttl_s: float = Field(
        60.0,
        gt=0,
        description="A reactor unseen for this long leaves the fleet (readers filter; a TTL index "
        "deletes it).",
    )
    result_inline_max_bytes: int = Field(
        8_000_000,
        ge=1024,
        le=15_000_000,
        description="Results larger than this go to GridFS with a reference.",
    )

    @model_validator(mode="after")
    def _derived(self) -> Settings:
        if self.sweep_s == 0:
            object.__setattr__(self, "sweep_s", self.lease_s / 2)
        return self

    def check_service(self) -> None:
        """What ``reactor run`` needs beyond each field's own rule (:class:`ConfigError`)."""
        if self.fleet_ttl_s < 2 * self.fleet_heartbeat_s:
            raise ConfigError(
                f"REACTOR_FLEET_TTL_S ({self.fleet_ttl_s:g}) must be at least twice "
                f"REACTOR_FLEET_HEARTBEAT_S ({self.fleet_heartbeat_s:g}): a live reactor would "
                "drop out of the fleet between two heartbeats"
            )
        if self.api_read_token and not self.api_token:
            raise ConfigError(
                "REACTOR_API_READ_TOKEN is set without REACTOR_API_TOKEN: the API is off "
                "without the read-write token"
            )

    @property
    def heartbeat_s(self) -> float:
        """Lease renewal period: three renewals fit in one lease."""
        return self.lease_s / 3

    @property
    def handler_module_list(self) -> list[str]:
        """``handler_modules`` split at commas, blanks dropped."""
        return [part.strip() for part in self.handler_modules.split(",") if part.strip()]

    @property
    def api_enabled(self) -> bool:
        """Whether /api and /ui are served (a token is configured)."""
        return bool(self.api_token)

    def handler_options(self) -> dict[str, Any]:
        """The settings a handler may read through ``JobContext.settings`` (picklable)."""
        return {"max_image_pixels": self.max_image_pixels}


def env_name(field: str) -> str:
    """The environment variable behind a settings field."""
    return ENV_PREFIX + field.upper()


def load_settings(**overrides: Any) -> Settings:
    """Read the environment, apply ``overrides`` (CLI flags), or raise :class:`ConfigError`."""
    clean = {key: value for key, value in overrides.items() if value is not None}
    try:
        return Settings(**clean)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, set(clean))) from None


def _describe(exc: ValidationError, from_flags: set[str]) -> str:
    lines = []
    for error in exc.errors():
        field = str(error["loc"][0]) if error["loc"] else "?"
        source = f"--{field.replace('_', '-')}" if field in from_flags else env_name(field)
        value = error.get("input")
        lines.append(f"{source}={value!r}: {error['msg']}")
    return "invalid configuration: " + "; ".join(lines)
