"""Jobs and results as people read them: ``reactor list``'s table, ``reactor status``'s page.

Pure functions from documents to text; the field names come from :mod:`reactor.model`. Times
are shown in UTC to the second; a missing field shows as ``-``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from bson import ObjectId

from reactor import model

Doc = Mapping[str, Any]
LIST_HEADER = ("JOB_ID", "COMMAND", "STATUS", "RUN", "ATTEMPT", "PROGRESS", "UPDATED")


def list_table(jobs: Sequence[Doc]) -> str:
    """The ``reactor list`` table, one job per row, columns padded to their widest cell."""
    rows = [LIST_HEADER, *(list_row(job) for job in jobs)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(LIST_HEADER))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    )


def list_row(job: Doc) -> tuple[str, ...]:
    """One job's cells: id, command, status, run, attempt, progress, when it last changed."""
    return (
        str(job.get(model.JOB_ID, job.get(model.ID, "-"))),
        str(job.get(model.COMMAND, "-")),
        status_of(job),
        str(job.get(model.RUN, 1)),
        str(job.get(model.ATTEMPT, "-")),
        percent(job.get(model.PROGRESS)),
        when(updated_at(job)),
    )


def status_page(job: Doc | None, result: Doc | None) -> str:
    """The ``reactor status`` page: the job's state, its progress, its result and its history."""
    lines: list[tuple[str, str]] = []
    doc = job or result or {}
    lines.append(("job", str(doc.get(model.JOB_ID, "-"))))
    lines.append(("command", str(doc.get(model.COMMAND, "-"))))
    if job is not None:
        lines += _job_lines(job)
    else:
        lines.append(("status", "no job document (only a result)"))
    if result is not None:
        lines += _result_lines(result)
    width = max(len(label) for label, _ in lines)
    return "\n".join(f"{label.ljust(width)}  {value}".rstrip() for label, value in lines)


def status_of(job: Doc) -> str:
    """A job's status, ``queued`` when the document has none."""
    return str(job.get(model.STATUS) or model.Status.QUEUED.value)


def percent(progress: Any) -> str:
    """``42%`` from a ``progress`` field, ``-`` without one."""
    if isinstance(progress, Mapping) and isinstance(progress.get("fraction"), int | float):
        return f"{100 * float(progress['fraction']):.0f}%"
    return "-"


def updated_at(job: Doc) -> datetime | None:
    """When the job last changed, as far as its fields tell."""
    progress = job.get(model.PROGRESS)
    candidates = [
        job.get(model.FINISHED_AT),
        progress.get("updated_at") if isinstance(progress, Mapping) else None,
        job.get(model.STARTED_AT),
        job.get(model.CREATED_AT),
    ]
    for value in candidates:
        if isinstance(value, datetime):
            return value
    doc_id = job.get(model.ID)
    return doc_id.generation_time if isinstance(doc_id, ObjectId) else None


def when(value: Any) -> str:
    """A date as ``YYYY-MM-DD HH:MM:SS`` UTC; ``-`` for anything else."""
    if not isinstance(value, datetime):
        return "-"
    aware = value if value.tzinfo else value.replace(tzinfo=UTC)
    return aware.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def _job_lines(job: Doc) -> list[tuple[str, str]]:
    status = status_of(job)
    run, attempt = job.get(model.RUN, 1), job.get(model.ATTEMPT)
    counted = f"run {run}" + (f", attempt {attempt}" if attempt is not None else "")
    lines = [("status", f"{status} ({counted})")]
    progress = job.get(model.PROGRESS)
    if isinstance(progress, Mapping):
        message = progress.get("message")
        text = percent(progress) + (f" {message}" if message else "")
        lines.append(("progress", f"{text} (at {when(progress.get('updated_at'))})"))
    if job.get(model.LEASE_OWNER):
        expires = when(job.get(model.LEASE_EXPIRES_AT))
        lines.append(("owner", f"{job[model.LEASE_OWNER]} (lease until {expires})"))
    if job.get(model.RUN_AT) is not None:
        lines.append(("run at", when(job.get(model.RUN_AT))))
    if job.get(model.PRIORITY) is not None:
        lines.append(("priority", str(job.get(model.PRIORITY))))
    if job.get(model.CANCEL_REQUESTED):
        lines.append(("cancel", f"requested at {when(job.get(model.CANCEL_REQUESTED_AT))}"))
    times = [
        (name, when(job.get(field)))
        for name, field in (
            ("created", model.CREATED_AT),
            ("started", model.STARTED_AT),
            ("finished", model.FINISHED_AT),
        )
        if job.get(field) is not None
    ]
    lines += times
    if job.get(model.ADOPTED_AT) is not None:
        adopted = when(job[model.ADOPTED_AT])
        lines.append(("adopted", f"{adopted} (status from its existing result)"))
    for error in job.get(model.ERRORS) or []:
        if isinstance(error, Mapping):
            lines.append(("failed try", _error_line(error, error.get("attempt"))))
    return lines


def _result_lines(result: Doc) -> list[tuple[str, str]]:
    status = model.result_status(result)
    duration = result.get("duration_ms")
    took = f" in {duration:g} ms" if isinstance(duration, int | float) else ""
    run = f"run {result.get(model.RUN, 1)}"
    if not model.is_own_result(result):  # a polling loop's, kept as it was at adoption
        run += f", written before adoption at {when(model.result_finished_at(result))}"
    lines = [("result", f"{status} ({run}){took}")]
    error = model.result_error(result)
    if error is not None:
        lines.append(("error", f"{error[0]}: {_first_line(error[1])}"))
    if result.get(model.CANCELLED_VIA):
        via, at = result.get(model.CANCELLED_VIA), when(result.get(model.CANCELLED_AT))
        lines.append(("cancelled", f"at {at} through {via}"))
    for entry in result.get(model.HISTORY) or []:
        if isinstance(entry, Mapping):
            lines.append(("history", _history_line(entry)))
    return lines


def _history_line(entry: Doc) -> str:
    attempts = entry.get("attempts")
    tries = f" after {attempts} attempt{'s' if attempts != 1 else ''}" if attempts else ""
    error = f" ({entry['error_type']})" if entry.get("error_type") else ""
    finished = f", finished {when(entry.get(model.FINISHED_AT))}"
    return (
        f"run {entry.get(model.RUN, '?')}: {entry.get(model.STATUS, '?')}{tries}{error}{finished}"
    )


def _error_line(error: Doc, attempt: Any) -> str:
    return f"attempt {attempt}: {error.get('type', '?')}: {_first_line(error.get('message'))}"


def _first_line(text: Any, limit: int = 200) -> str:
    line = str(text or "").strip().splitlines()[0] if text else ""
    return line if len(line) <= limit else line[: limit - 3] + "..."
