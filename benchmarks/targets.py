"""Issue 15's targets on 2 cores, set beside what one run measured: pass or miss, never asserted.

Each row names the target, the figure measured (medians of the rounds, pooled latency samples) and
``pass``/``miss``. A row measured at other sizes than the target's (``make bench-quick``) says so;
a figure the run did not take reads ``not measured``.
"""

from __future__ import annotations

from typing import Any

Doc = dict[str, Any]


def _row(target: str, measured: str, ok: bool | None, note: str = "") -> Doc:
    verdict = "not measured" if ok is None else ("pass" if ok else "miss")
    return {"target": target, "measured": measured, "verdict": verdict, "note": note}


NET = "net of what the reactors send idle (heartbeats) over the same time"


def _size_note(actual: int, wanted: int) -> str:
    return "" if actual == wanted else f"measured with {actual:,} jobs, not {wanted:,}"


def round_trip_rows(summary: Doc) -> list[Doc]:
    trips = summary["round_trips"]
    alone = trips["0"]["trickle"]["net_of_idle"]["median"]
    raw = trips["0"]["trickle"]["round_trips_per_job"]["median"]
    rows = [
        _row(
            "round trips per job, one job at a time, one reactor: at most 3",
            f"{alone:.2f} ({raw:.2f} with idle traffic)",
            alone <= 3,
            NET,
        )
    ]
    burst = trips["0"].get("burst")
    if burst is not None:
        value = burst["net_of_idle"]["median"]
        rows.append(
            _row(
                "round trips per job in a 2,000 burst: at most 1.5",
                f"{value:.2f}",
                value <= 1.5,
                _size_note(burst["jobs"], 2_000),
            )
        )
    if "8" in trips:
        added = trips["8"]["trickle"]["net_of_idle"]["median"] - alone
        rows.append(
            _row(
                "idle replicas: 8 of them add at most 0.5 round trips per job",
                f"+{added:.2f} ({alone:.2f} -> {alone + added:.2f})",
                added <= 0.5,
            )
        )
    else:
        rows.append(_row("idle replicas: 8 of them add at most 0.5 round trips per job", "-", None))
    return rows


def peer_rows(summary: Doc) -> list[Doc]:
    size = max(summary["bursts"], key=int)
    burst = summary["bursts"][size]
    note = _size_note(int(size), 2_000)
    ratio = burst["ratio_reactor_1"]["throughput"]["median"]
    reactor_rate = burst["reactor_1"]["jobs_per_s"]["median"]
    celery_rate = burst["celery"]["jobs_per_s"]["median"]
    cpu = burst["ratio_reactor_1"]["worker_cpu"]["median"]
    lat = summary["latency"]
    p50, peer_p50 = lat["reactor"]["p50_ms"], lat["celery"]["p50_ms"]
    return [
        _row(
            "no-op throughput, 2,000 burst, one reactor: at least Celery's",
            f"{reactor_rate:,.0f} vs {celery_rate:,.0f} jobs/s ({ratio:.2f}x)",
            ratio >= 1,
            note,
        ),
        _row(
            "the reactor's CPU per no-op job: at most half of Celery's worker tree",
            f"{cpu:.2f}x Celery's",
            cpu <= 0.5,
            note,
        ),
        _row(
            "dispatch latency p50: at most Celery's",
            f"{p50:.2f} ms vs {peer_p50:.2f} ms",
            p50 <= peer_p50,
        ),
    ]


def resource_rows(summary: Doc) -> list[Doc]:
    ocr = summary["ocr"]["ratio_reactor_raw"]["median"]
    memory, drains = summary["memory"], summary["drains"]
    peaks = [memory["reactor_idle_mb"]["median"], memory["reactor_after_burst_mb"]["median"]]
    peaks += [v["median"] for d in memory["reactor_during_drains_mb"].values() for v in d.values()]
    rows = [
        _row("OCR throughput: at least 0.97 of raw tesseract", f"{ocr:.3f}", ocr >= 0.97),
        _row("resident memory: at most 100 MB", f"{max(peaks):.1f} MB at most", max(peaks) <= 100),
    ]
    sizes = sorted((n for n in drains if n != "ratio"), key=int)
    if not sizes:
        return rows
    largest = memory["reactor_during_drains_mb"][sizes[-1]]
    if "1000" in largest:
        low, high = largest["1000"]["median"], largest[sizes[-1]]["median"]
        rows.append(
            _row(
                "resident memory flat from 1,000 to 20,000 jobs (read: grows at most 10%)",
                f"{low:.1f} -> {high:.1f} MB",
                high <= 1.1 * low,
                _size_note(int(sizes[-1]), 20_000),
            )
        )
    if "ratio" in drains:
        ratio = drains["ratio"]["median"]
        rows.append(
            _row(
                "a 20,000 backlog drains in at most 2.2x the time of 10,000",
                f"{ratio:.2f}x",
                ratio <= 2.2,
                _size_note(int(sizes[-1]), 20_000),
            )
        )
    return rows


def workflow_rows(summary: Doc) -> list[Doc]:
    found = summary.get("workflow_ocr")
    target = "ocr_document, 12 pages: under 0.65 x (12 x one page's time) (issue 16)"
    if not found:
        return [_row(target, "-", None)]
    ratio = found["ratio"]
    note = f"raw tesseract's own ratio on this machine: {found['raw_tesseract_ratio']:.3f}"
    return [_row(target, f"{ratio:.3f}", ratio < 0.65, note)]


def targets(summary: Doc) -> list[Doc]:
    rows = round_trip_rows(summary) + peer_rows(summary) + resource_rows(summary)
    return rows + workflow_rows(summary)
