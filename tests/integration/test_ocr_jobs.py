"""OCR through the whole reactor, for a client that has no access to the shared volume."""

from __future__ import annotations

from typing import Any

from pymongo.asynchronous.database import AsyncDatabase
from reactor_handlers.samples import sample_page

from reactor.client import new_job, wait_for_result
from reactor.config import Settings
from reactor.store import load_large_result
from tests.integration.reactors import running

Db = AsyncDatabase[dict[str, Any]]


async def test_image_bytes_in_and_outputs_through_gridfs(settings: Settings, db: Db) -> None:
    """A page sent as bytes comes back with its text and its hOCR and PDF, via GridFS when large."""
    args = {
        "image_bytes": sample_page().read_bytes(),
        "outputs": ["hocr", "pdf"],
        "inline_outputs": True,
    }
    async with running(settings, result_inline_max_bytes=16_000):  # the installed handlers
        await db.jobs.insert_one(new_job("ocr", args, "remote-ocr"))
        result = await wait_for_result(db, "remote-ocr", timeout_s=120)
    assert result["status"] == "succeeded", result.get("error")
    assert result["result"] is None
    value = await load_large_result(db, result["result_ref"])
    assert "job documents" in value["text"]
    assert value["contents"]["pdf"].startswith(b"%PDF")
    assert b"ocrx_word" in value["contents"]["hocr"]
