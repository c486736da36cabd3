"""From the rounds of one run to its summary: the figures across rounds, and ratios per pair.

Across rounds: latency samples are pooled (p50, p99 and max of all of them); every other figure is
the median of its rounds, with each round's value kept beside it. A ratio is taken within each
round (the two systems measured minutes apart) and its median reported.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Iterable
from typing import Any

Doc = dict[str, Any]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def median(values: Iterable[float]) -> float:
    return float(statistics.median(list(values)))


def across(rounds: list[Doc], pick: Callable[[Doc], float], digits: int = 3) -> Doc:
    values = [round(pick(r), digits) for r in rounds]
    return {"median": round(median(values), digits), "rounds": values}


def _latency(rounds: list[Doc], system: str, key: str) -> Doc:
    pooled = [x for r in rounds for x in r[system]["latency"]["reply"][key]]
    return {
        "n": len(pooled),
        "p50_ms": round(percentile(pooled, 50), 3),
        "p99_ms": round(percentile(pooled, 99), 3),
        "max_ms": round(max(pooled), 3),
        "p50_ms_by_round": [
            round(percentile(r[system]["latency"]["reply"][key], 50), 3) for r in rounds
        ],
    }


def _round_p(r: Doc, system: str, q: float) -> float:
    return percentile(r[system]["latency"]["reply"]["handler_ms"], q)


def latency(rounds: list[Doc]) -> Doc:
    return {
        "reactor": _latency(rounds, "reactor_1", "handler_ms"),
        "celery": _latency(rounds, "celery", "handler_ms"),
        "ratio_p50": across(
            rounds, lambda r: _round_p(r, "reactor_1", 50) / _round_p(r, "celery", 50)
        ),
        "ratio_p99": across(
            rounds, lambda r: _round_p(r, "reactor_1", 99) / _round_p(r, "celery", 99)
        ),
        "result_seen": {
            "reactor": _latency(rounds, "reactor_1", "result_ms"),
            "celery": _latency(rounds, "celery", "result_ms"),
        },
        "trickle_cpu_ms_per_job": {
            s: {
                g: across(rounds, lambda r, s=s, g=g: r[s]["latency"]["cpu_ms_per_job"][g])
                for g in ("worker", "server")
            }
            for s in ("reactor_1", "celery")
        },
    }


def _rate(r: Doc, system: str, n: str) -> float:
    reply = r[system]["bursts"][n]["reply"]
    return float(reply["jobs"] / reply["seconds"])


def _cpu(r: Doc, system: str, n: str, group: str) -> float:
    return float(r[system]["bursts"][n]["cpu_ms_per_job"][group])


def _burst(rounds: list[Doc], n: str) -> Doc:
    figures: Doc = {}
    for s in ("reactor_1", "reactor_2", "celery"):
        figures[s] = {
            "jobs_per_s": across(rounds, lambda r, s=s: _rate(r, s, n), 1),
            "cpu_ms_per_job": {
                g: across(rounds, lambda r, s=s, g=g: _cpu(r, s, n, g))
                for g in ("worker", "server")
            },
            "rss_after": rounds[-1][s]["bursts"][n]["rss"],
        }
    for s in ("reactor_1", "reactor_2"):
        figures[f"ratio_{s}"] = {
            "throughput": across(rounds, lambda r, s=s: _rate(r, s, n) / _rate(r, "celery", n)),
            "worker_cpu": across(
                rounds, lambda r, s=s: _cpu(r, s, n, "worker") / _cpu(r, "celery", n, "worker")
            ),
        }
    return figures


def bursts(rounds: list[Doc]) -> Doc:
    return {n: _burst(rounds, n) for n in rounds[0]["reactor_1"]["bursts"]}


def round_trips(rounds: list[Doc]) -> Doc:
    out: Doc = {}
    for extra, first in rounds[0]["round_trips"].items():
        figures: Doc = {"reactors": first["reactors"]}
        for kind in ("trickle", "burst"):
            if kind not in first:
                continue
            runs = [r["round_trips"][extra][kind] for r in rounds]
            names = sorted({name for run in runs for name in run["by_command"]})
            figures[kind] = {
                "jobs": first[kind]["jobs"],
                "round_trips_per_job": across(runs, lambda run: run["round_trips_per_job"]),
                "net_of_idle": across(runs, lambda run: run["round_trips_per_job_net_of_idle"]),
                "stream_getmores_per_job": across(runs, lambda run: run["stream_getmores_per_job"]),
                "by_command_mean": {
                    name: round(
                        statistics.fmean(run["by_command"].get(name, 0.0) for run in runs), 3
                    )
                    for name in names
                },
            }
        figures["idle_commands_per_s"] = across(
            [r["round_trips"][extra] for r in rounds], lambda x: x["idle_commands_per_s"], 2
        )
        figures["idle_by_command_per_s"] = rounds[-1]["round_trips"][extra]["idle_by_command_per_s"]
        out[extra] = figures
    return out


def drains(rounds: list[Doc]) -> Doc:
    out: Doc = {}
    for n in sorted(rounds[0]["drains"], key=int):
        runs = [r["drains"][n] for r in rounds]
        out[n] = {
            "seconds": across(runs, lambda d: d["seconds"], 2),
            "first_result_s": across(runs, lambda d: d["first_result_s"], 2),
            "jobs_per_s_after_first": across(runs, lambda d: d["jobs_per_s_after_first"], 1),
            "cpu_ms_per_job_after_first": {
                g: across(runs, lambda d, g=g: d["cpu_ms_per_job_after_first"][g])
                for g in ("worker", "server")
            },
            "rss_mb_at": {
                k: across(runs, lambda d, k=k: d["rss_mb_at"][k], 1) for k in runs[0]["rss_mb_at"]
            },
        }
    sizes = sorted(out, key=int)
    if len(sizes) == 2:
        small, large = sizes
        out["ratio"] = across(
            rounds, lambda r: r["drains"][large]["seconds"] / r["drains"][small]["seconds"]
        )
    return out


def ocr(rounds: list[Doc]) -> Doc:
    def rate(r: Doc, way: str) -> float:
        return float(r["ocr"][way]["pages_per_s"])

    def cpu(r: Doc, way: str) -> float:
        return float(sum(r["ocr"][way]["cpu_ms_per_page"].values()))

    out: Doc = {
        way: {
            "pages_per_s": across(rounds, lambda r, w=way: rate(r, w)),
            "best_pages_per_s": max(rate(r, way) for r in rounds),
            "cpu_ms_per_page": across(rounds, lambda r, w=way: cpu(r, w), 1),
        }
        for way in ("raw", "reactor", "celery")
    }
    first = rounds[0]["ocr"]["raw"]
    out["pages"] = first["runs"][0]["pages"] if "runs" in first else first["pages"]
    out["runs_per_round"] = len(first.get("runs", [first]))
    out["ratio_reactor_raw"] = across(rounds, lambda r: rate(r, "reactor") / rate(r, "raw"))
    out["ratio_celery_raw"] = across(rounds, lambda r: rate(r, "celery") / rate(r, "raw"))
    out["ratio_reactor_celery"] = across(rounds, lambda r: rate(r, "reactor") / rate(r, "celery"))
    return out


def memory(rounds: list[Doc], drained: Doc) -> Doc:
    largest = max(rounds[0]["reactor_1"]["bursts"], key=int)
    return {
        "reactor_idle_mb": across(rounds, lambda r: r["reactor_1"]["idle"]["rss"]["main_mb"][0], 1),
        "reactor_idle_tree_mb": across(
            rounds, lambda r: r["reactor_1"]["idle"]["rss"]["tree_mb"], 1
        ),
        "reactor_after_burst_mb": across(
            rounds, lambda r: r["reactor_1"]["bursts"][largest]["rss"]["main_mb"][0], 1
        ),
        "reactor_after_burst_tree_mb": across(
            rounds, lambda r: r["reactor_1"]["bursts"][largest]["rss"]["tree_mb"], 1
        ),
        "celery_after_burst_main_mb": across(
            rounds, lambda r: r["celery"]["bursts"][largest]["rss"]["main_mb"][0], 1
        ),
        "celery_after_burst_tree_mb": across(
            rounds, lambda r: r["celery"]["bursts"][largest]["rss"]["tree_mb"], 1
        ),
        "reactor_during_drains_mb": {n: d["rss_mb_at"] for n, d in drained.items() if n != "ratio"},
    }


def conditions(rounds: list[Doc]) -> dict[str, list[list[float]]]:
    """Per case, round by round: the cores other processes kept busy, and the cores left idle."""
    return {
        case: [
            [r["conditions"][case]["others_cores_busy"], r["conditions"][case]["idle_cores"]]
            for r in rounds
        ]
        for case in rounds[0]["conditions"]
    }


def summarize(results: Doc) -> Doc:
    rounds = results["rounds"]
    summary: Doc = {
        "conditions": conditions(rounds),
        "latency": latency(rounds),
        "bursts": bursts(rounds),
        "round_trips": round_trips(rounds),
        "drains": drains(rounds),
        "ocr": ocr(rounds),
    }
    summary["memory"] = memory(rounds, summary["drains"])
    if results.get("workflow_ocr"):
        summary["workflow_ocr"] = results["workflow_ocr"]
    return summary
