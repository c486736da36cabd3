"""Log lines are JSON objects a shipper can index: time, level, logger, event, job, exception."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from reactor.logging import bind_job, configure, get_logger


@pytest.fixture
def json_logs() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    configure("json", "info", stream=stream)
    yield stream
    logging.getLogger().handlers.clear()


def _lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line]


def test_job_lines_carry_the_job_context(json_logs: io.StringIO) -> None:
    """A line written inside bind_job has job_id, command, attempt and the standard fields."""
    with bind_job("j-1", "ocr", 2):
        get_logger("reactor.test").info("page_done", pages=3)
    (line,) = _lines(json_logs)
    assert line["event"] == "page_done"
    assert (line["job_id"], line["command"], line["attempt"], line["pages"]) == ("j-1", "ocr", 2, 3)
    assert (line["level"], line["logger"]) == ("info", "reactor.test")
    assert str(line["timestamp"]).endswith("Z")


def test_exceptions_are_structured_fields(json_logs: io.StringIO) -> None:
    """An exception is a structured field with its type and value, not a text blob."""
    try:
        raise ValueError("bad page")
    except ValueError:
        get_logger("reactor.test").exception("job_crashed")
    (line,) = _lines(json_logs)
    (frame,) = line["exception"]  # type: ignore[misc]
    assert (frame["exc_type"], frame["exc_value"]) == ("ValueError", "bad page")


def test_library_logs_go_through_the_same_renderer(json_logs: io.StringIO) -> None:
    """Standard-library loggers (uvicorn, pymongo) come out as the same JSON lines."""
    logging.getLogger("some.library").warning("disk %s full", "/tmp")
    (line,) = _lines(json_logs)
    assert (line["event"], line["level"], line["logger"]) == (
        "disk /tmp full",
        "warning",
        "some.library",
    )
