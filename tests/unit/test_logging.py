"""Log lines are JSON objects a shipper can index: time, level, logger, event, job, exception."""

from __future__ import annotations

import io
import json
import logging
import subprocess
import sys
from collections.abc import Iterator

import pytest

from reactor.errors import HandlerFailed
from reactor.logging import (
    bind_job,
    configure,
    get_logger,
    log_handler_failure,
    log_infrastructure_failure,
)

SECRET = "s3cr3t-job-argument"


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


def _handler_that_fails(password: str) -> None:
    """A handler whose locals hold a job argument when it raises."""
    derived = password.upper()  # noqa: F841 (a local the traceback must not show)
    raise ValueError("cannot open the archive")


def _fail(password: str = SECRET) -> BaseException:
    try:
        _handler_that_fails(password)
    except ValueError as exc:
        return exc
    raise AssertionError("the handler did not raise")


def test_a_logged_handler_failure_carries_no_local_variables(json_logs: io.StringIO) -> None:
    """A handler failure is a warning with error_type, error and frames, and no locals at all."""
    log_handler_failure(get_logger("reactor.dispatch"), _fail(), job_id="j-1")
    raw = json_logs.getvalue()
    assert SECRET not in raw
    assert SECRET.upper() not in raw
    (line,) = _lines(json_logs)
    assert (line["level"], line["event"], line["error_type"]) == (
        "warning",
        "job_failed",
        "ValueError",
    )
    assert line["error"] == "cannot open the archive"
    (stack,) = line["exception"]  # type: ignore[misc]
    assert [frame["name"] for frame in stack["frames"]][-1] == "_handler_that_fails"
    assert all("locals" not in frame for frame in stack["frames"])


def test_exc_info_passed_directly_carries_no_locals_either(json_logs: io.StringIO) -> None:
    """``log.warning(..., exc_info=exc)``, as code outside the helpers writes it, is safe too."""
    get_logger("reactor.test").warning("handler_raised", exc_info=_fail())
    assert SECRET not in json_logs.getvalue()


def test_log_locals_turns_locals_on_for_debugging() -> None:
    """With show_locals (REACTOR_LOG_LOCALS=true) the frames carry their local variables."""
    stream = io.StringIO()
    configure("json", "info", stream=stream, show_locals=True, max_line_bytes=1_000_000)
    try:
        log_handler_failure(get_logger("reactor.test"), _fail())
    finally:
        logging.getLogger().handlers.clear()
    (line,) = _lines(stream)
    frames = line["exception"][0]["frames"]  # type: ignore[index]
    assert any("password" in frame.get("locals", {}) for frame in frames)


def test_infrastructure_failures_are_errors(json_logs: io.StringIO) -> None:
    """log_infrastructure_failure logs at error, with the same fields."""
    log_infrastructure_failure(get_logger("reactor.store"), OSError("disk gone"), "record_failed")
    (line,) = _lines(json_logs)
    assert (line["level"], line["event"], line["error_type"], line["error"]) == (
        "error",
        "record_failed",
        "OSError",
        "disk gone",
    )


def test_a_pool_failure_keeps_its_type_and_remote_traceback(json_logs: io.StringIO) -> None:
    """A HandlerFailed from a worker is logged under the original type, with its traceback text."""
    exc = HandlerFailed("boom", type_name="builtins.KeyError", remote_traceback="Traceback ...")
    log_handler_failure(get_logger("reactor.dispatch"), exc)
    (line,) = _lines(json_logs)
    assert (line["error_type"], line["remote_traceback"]) == ("KeyError", "Traceback ...")


def test_a_huge_message_stays_under_the_cap(json_logs: io.StringIO) -> None:
    """A 1 MB field is cut so the line stays within 2 KB, noting the original sizes."""
    with bind_job("j-1", "ocr", 1):
        get_logger("reactor.test").info("page_done", text="x" * 1_000_000, pages=3)
    raw = json_logs.getvalue().splitlines()[0]
    assert len(raw.encode()) <= 2048
    line = json.loads(raw)
    assert (line["event"], line["job_id"], line["pages"]) == ("page_done", "j-1", 3)
    assert "[truncated, 1000000 chars]" in line["text"]
    assert line["truncated_from_bytes"] > 1_000_000


def test_a_huge_exception_with_a_deep_traceback_stays_under_the_cap(
    json_logs: io.StringIO,
) -> None:
    """A 2 MB exception message raised 60 frames deep logs as one line within 2 KB."""

    def deep(n: int) -> None:
        if n == 0:
            raise RuntimeError("y" * 2_000_000)
        deep(n - 1)

    try:
        deep(60)
    except RuntimeError as exc:
        log_handler_failure(get_logger("reactor.dispatch"), exc)
    raw = json_logs.getvalue().splitlines()[0]
    assert len(raw.encode()) <= 2048
    line = json.loads(raw)
    assert line["level"] == "warning"
    assert "[truncated, 2000000 chars]" in line["error"]
    frames = line["exception"][0]["frames"]
    assert any("items left out" in str(frame) for frame in frames)
    assert frames[-1]["name"] == "deep"  # the innermost frame is kept


def test_library_lines_are_capped_too(json_logs: io.StringIO) -> None:
    """A standard-library logger's huge line is cut to the cap like ours."""
    logging.getLogger("some.library").warning("payload %s", "z" * 50_000)
    raw = json_logs.getvalue().splitlines()[0]
    assert len(raw.encode()) <= 2048
    assert json.loads(raw)["logger"] == "some.library"


def test_pool_workers_configured_as_they_are_cap_their_lines() -> None:
    """A process configured like a pool worker (configure(format, level)) writes capped lines."""
    program = (
        "import reactor.logging as rl\n"
        "rl.configure('json', 'info')\n"
        "rl.get_logger('reactor.handler').info('big', blob='b' * 300000)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, timeout=60, check=True
    )
    (raw,) = result.stdout.splitlines()
    assert len(raw.encode()) <= 2048
    assert json.loads(raw)["truncated_from_bytes"] > 300_000


def test_uvicorn_says_only_what_matters_and_as_json(json_logs: io.StringIO) -> None:
    """uvicorn's start-up sentences ("Press CTRL+C to quit") are not logged (the reactor logs
    http_listening); its warnings still arrive as JSON lines."""
    import logging

    uvicorn = logging.getLogger("uvicorn.error")
    uvicorn.info("Uvicorn running on http://0.0.0.0:8080 (Press CTRL+C to quit)")
    uvicorn.warning("Invalid HTTP request received.")
    lines = [json.loads(line) for line in json_logs.getvalue().splitlines()]
    assert [(line["logger"], line["event"]) for line in lines] == [
        ("uvicorn.error", "Invalid HTTP request received.")
    ]
