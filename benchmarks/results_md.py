"""``results.md``: one run's figures as tables, with the machine, its load, targets and method."""

from __future__ import annotations

from typing import Any

Doc = dict[str, Any]


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def _m(figure: Doc, fmt: str = "{:.2f}") -> str:
    """The median of a figure taken across rounds."""
    return fmt.format(figure["median"])


def _spread(figure: Doc, fmt: str = "{:.2f}") -> str:
    """The median, and every round's value when there were several."""
    rounds = figure["rounds"]
    text = fmt.format(figure["median"])
    return text if len(rounds) < 2 else f"{text} ({', '.join(fmt.format(v) for v in rounds)})"


def _processes(k: int) -> str:
    return "1 reactor process" if k == 1 else f"{k} reactor processes"


def _three(x: Doc) -> str:
    return f"{x['p50_ms']:.2f} / {x['p99_ms']:.2f} / {x['max_ms']:.1f} ms"


def _cpu(figures: Doc, server: str) -> str:
    """Worker-side CPU per job, and the server's in brackets."""
    return f"{_spread(figures['worker'])} ms ({_m(figures['server'])} ms {server})"


def _latency_rows(s: Doc) -> list[list[str]]:
    lat = s["latency"]
    seen, cpu = lat["result_seen"], lat["trickle_cpu_ms_per_job"]
    label = (
        "dispatch latency p50 / p99 / max, one job at a time, insert → handler's first line "
        f"({lat['reactor']['n']} jobs each)"
    )
    ratio = f"p50 {_spread(lat['ratio_p50'])}; p99 {_spread(lat['ratio_p99'])}"
    return [
        [label, _three(lat["reactor"]), _three(lat["celery"]), ratio],
        ["insert → result seen by the client, p50 / p99 / max", _three(seen["reactor"]),
         _three(seen["celery"]), ""],
        ["CPU per job, one job at a time: worker side (server)",
         _cpu(cpu["reactor_1"], "double"), _cpu(cpu["celery"], "Redis"), ""],
    ]  # fmt: skip


def _burst_rows(s: Doc) -> list[list[str]]:
    rows = []
    for n, b in s["bursts"].items():
        for k in (1, 2):
            rows.append([
                f"no-op throughput, {int(n):,} jobs queued at once, {_processes(k)}",
                f"{_spread(b[f'reactor_{k}']['jobs_per_s'], '{:,.0f}')} jobs/s",
                f"{_spread(b['celery']['jobs_per_s'], '{:,.0f}')} jobs/s",
                _spread(b[f"ratio_reactor_{k}"]["throughput"]),
            ])  # fmt: skip
    n, b = max(s["bursts"].items(), key=lambda item: int(item[0]))
    for k in (1, 2):
        rows.append([
            f"CPU per job in the {int(n):,} burst, {_processes(k)}: worker side (server)",
            _cpu(b[f"reactor_{k}"]["cpu_ms_per_job"], "double"),
            _cpu(b["celery"]["cpu_ms_per_job"], "Redis"),
            _spread(b[f"ratio_reactor_{k}"]["worker_cpu"]),
        ])  # fmt: skip
    return rows


def _memory_row(s: Doc) -> list[str]:
    mem, n = s["memory"], max(s["bursts"], key=int)

    def both(main: str, tree: str) -> str:
        return f"{_m(mem[main], '{:.0f}')} MB ({_m(mem[tree], '{:.0f}')} MB)"

    return [
        f"resident memory after the {int(n):,} burst: main process (its tree)",
        both("reactor_after_burst_mb", "reactor_after_burst_tree_mb"),
        both("celery_after_burst_main_mb", "celery_after_burst_tree_mb"),
        "",
    ]


def _ocr_row(s: Doc) -> list[str]:
    ocr = s["ocr"]

    def way(name: str) -> str:
        ratio = _m(ocr[f"ratio_{name}_raw"], "{:.3f}")
        return f"{_spread(ocr[name]['pages_per_s'])} ({ratio} of raw)"

    raw = _spread(ocr["raw"]["pages_per_s"])
    label = (
        f"OCR, {ocr['pages']} pages, each way {ocr['runs_per_round']} times a round (A B C C B A), "
        f"pages/s (raw parallel tesseract: {raw})"
    )
    return [label, way("reactor"), way("celery"), _spread(ocr["ratio_reactor_celery"])]


def _ocr_rows(s: Doc) -> list[list[str]]:
    ocr = s["ocr"]

    def best(way: str) -> str:
        return f"{ocr[way]['best_pages_per_s']:.2f}"

    def cpu(way: str) -> str:
        return f"{_spread(ocr[way]['cpu_ms_per_page'], '{:.0f}')} ms"

    return [
        _ocr_row(s),
        [f"OCR, pages/s of the best round (raw: {best('raw')})",
         best("reactor"), best("celery"), ""],
        [f"OCR, CPU per page: worker side with tesseract, plus the server (raw: {cpu('raw')})",
         cpu("reactor"), cpu("celery"), ""],
    ]  # fmt: skip


def side_by_side(s: Doc) -> str:
    """The figures taken for both systems, with the ratio reactor / Celery within each round."""
    rows = [*_latency_rows(s), *_burst_rows(s), _memory_row(s), *_ocr_rows(s)]
    header = ["figure", "mongo-reactor on the double", "Celery 5 + Redis", "ratio reactor / Celery"]
    return _table(header, rows)


def _round_trip_rows(s: Doc) -> list[list[str]]:
    rows = []
    for extra, rt in s["round_trips"].items():
        who = "one reactor" if extra == "0" else f"one reactor + {extra} idle"
        for kind, label in (("trickle", "one job at a time"), ("burst", "a burst")):
            if kind in rt:
                f = rt[kind]
                parts = "all, by command: " + ", ".join(
                    f"{k} {v:g}" for k, v in f["by_command_mean"].items()
                )
                figure = f"**{_spread(f['net_of_idle'])}** ({_m(f['round_trips_per_job'])} in all)"
                rows.append([f"round trips per job, {label} ({f['jobs']:,} jobs), {who}",
                             figure, parts])  # fmt: skip
        idle = ", ".join(f"{k} {v:g}" for k, v in rt["idle_by_command_per_s"].items())
        rows.append([f"commands per second while idle, {who} (the streams' getMore aside)",
                     _spread(rt["idle_commands_per_s"]), idle])  # fmt: skip
    return rows


def _drain_rows(s: Doc) -> list[list[str]]:
    rows = []
    for n, d in s["drains"].items():
        if n == "ratio":
            rows.append(["drain time, the larger backlog / the smaller", _spread(d), ""])
            continue
        rss = ", ".join(f"{int(k):,}: {_m(v, '{:.1f}')}" for k, v in d["rss_mb_at"].items())
        cpu = d["cpu_ms_per_job_after_first"]
        detail = (
            f"first result at {_m(d['first_result_s'])} s, then "
            f"{_m(d['jobs_per_s_after_first'], '{:,.0f}')} jobs/s; CPU per job "
            f"{_m(cpu['worker'])} ms (double {_m(cpu['server'])} ms); "
            f"resident MB after N results: {rss}"
        )
        label = f"{int(n):,} jobs queued before one `reactor run` starts: s from its start"
        rows.append([label, f"**{_spread(d['seconds'])}**", detail])
    return rows


def reactor_alone(s: Doc) -> str:
    mem = s["memory"]
    main, tree = _m(mem["reactor_idle_mb"], "{:.1f}"), _m(mem["reactor_idle_tree_mb"], "{:.0f}")
    idle = [
        "resident memory idle, after start-up and the warm-up jobs: main process (its tree)",
        f"{main} MB ({tree} MB)",
        "",
    ]
    rows = [*_round_trip_rows(s), idle, *_drain_rows(s)]
    return _table(["figure", "measured: median (each round)", "detail"], rows)


def _ceiling_rows(c: Doc) -> list[list[str]]:
    rows = []
    if "inserts" in c:
        i = c["inserts"]
        text = f"{i['insert_one_per_s']:,}/s one at a time; {i['insert_many_per_s']:,}/s by 1,000"
        rows.append(["inserts", text])
    if "claims" in c:
        k = c["claims"]
        text = f"{k['claims_per_s']:,}/s; p50 {k['p50_ms']} ms, p99 {k['p99_ms']} ms"
        rows.append([f"tier-2 claims, {k['documents']:,} documents", text])
    if "events" in c:
        rate = c["events"]["burst_events_per_s"]
        rows.append(["one change stream, a burst of inserts", f"{rate:,} events/s"])
    if "drain" in c:
        d = c["drain"]
        label = f"drain, {d['jobs']:,} jobs, {d['workers']} workers making the reactor's calls"
        rows.append([label, f"{d['jobs_per_s']:,} jobs/s"])
    return rows


def double_alone(results: Doc) -> str:
    rows = _ceiling_rows(results["double_ceiling"])
    for e in results["event_latency_while_claiming"]:
        label = f"insert → change event while a process claims, {e['finished_docs']:,} finished"
        rows.append(
            [label, f"p50 {e['p50_ms']:.2f}, p99 {e['p99_ms']:.2f}, max {e['max_ms']:.1f} ms"]
        )
    return _table(["the double alone (its own process, no reactor)", "measured"], rows)


def workflow_table(results: Doc) -> str:
    """The ``ocr_document`` workflow: 12 pages in parallel against 12 times one page."""
    w = results.get("workflow_ocr")
    if not w:
        return "not measured in this run"
    rows = [
        ["one page, end to end (each round)", ", ".join(f"{x:.2f}" for x in w["one_page_s"])
         + " s"],
        [f"{w['pages']} pages, end to end (each round)",
         ", ".join(f"{x:.2f}" for x in w["twelve_pages_s"]) + " s"],
        [f"ratio: best {w['pages']} pages / ({w['pages']} x best one page)",
         f"**{w['ratio']:.3f}** (median of the rounds {w['median_ratio']:.3f})"],
        ["the machine's own ratio: raw tesseract, one per core, against one page alone",
         f"{w['raw_tesseract_ratio']:.3f}"],
        ["steps of the best many-page round", ", ".join(f"{k} {v} s" for k, v in
                                                         w["steps_s_of_best"].items())],
        ["load average at its end", ", ".join(str(x) for x in w["load_average"])],
    ]  # fmt: skip
    return _table(["figure", "measured"], rows)


def conditions_table(s: Doc) -> str:
    """Cores other processes kept busy, and cores left idle, during each case (the noise)."""
    by_case = s["conditions"]
    rounds = len(next(iter(by_case.values())))
    rows = [[case, *(f"{b:.2f} / {i:.2f}" for b, i in values)] for case, values in by_case.items()]
    return _table(["case", *(f"round {i + 1}" for i in range(rounds))], rows)


def targets_table(s: Doc) -> str:
    rows = [[t["target"], t["measured"], f"**{t['verdict']}**", t["note"]] for t in s["targets"]]
    return _table(["target (issues 15 and 16, 2 cores)", "measured", "", "note"], rows)


def machine_table(results: Doc) -> str:
    m, load = results["machine"], results["load"]
    versions = ", ".join(f"{k} {v}" for k, v in m["versions"].items() if k != "peer python")
    busiest = "; ".join(
        f"`{p['command']}` ({p['cpu_s']:.0f} s)" for p in load["busiest_other_processes"][:5]
    )
    others = (
        f"{load['other_processes_cpu_s']:.0f} CPU s over {load['wall_s']:.0f} s "
        f"({load['other_processes_cores_busy']:.2f} cores busy on average, "
        f"{load['idle_cores']:.2f} idle); busiest (sampled every 2 s): {busiest or 'none'}"
    )
    loads = f"before {load['load_average_before']}, after {load['load_average_after']}"
    rows = [
        ["cores", f"{m['cores']} ({m['cpu_model']}), {m['memory_gb']} GB"],
        ["system", f"{m['os']}, kernel {m['kernel']}"],
        ["Python", f"{m['python']} (the peer's: {m['versions']['peer python']})"],
        ["versions", versions],
        ["load average (1, 5, 15 min)", loads],
        ["other processes meanwhile", others],
        ["a real replica set", results["real_replica_set"]],
    ]
    return _table(["machine", ""], rows)


METHOD = """\
Every server is started by the bench and stopped by its PID, fresh for every case of every round;
the order of the cases is rotated from round to round (`benchmarks/run.py`).

- **mongo-reactor**: `reactor run` processes with default settings against the double
  (`reactor dev-mongo`, in its own process); handler `echo_stamped`
  (`benchmarks/bench_handlers.py`): `echo` on the loop, returning the monotonic time read on its
  first line.
- **Celery + Redis**: Debian's `redis-server` (no persistence) as broker and result backend; a
  Celery worker, prefork pool, `--concurrency=2`, `task_acks_late`, gossip, mingle and heartbeat
  off; the same `echo_stamped` as a task (`benchmarks/peer/`), in its own virtual environment.
- **Latency**: one job at a time, the next sent once the previous result was seen; the handler's
  first-line time minus the client's time right before its `insert_one` (`apply_async`), in the
  machine-wide monotonic clock. The samples of all rounds pooled.
- **Throughput**: a burst sent at once (one `insert_many`; one `apply_async` per task, Celery
  having no bulk send) to a warmed-up system; from before the send to the last result seen.
- **CPU per job**: CPU time (user + system, with reaped children) of the worker side's process
  trees (`reactor run` with its CPU pool; the Celery worker with its pool) and of the server (the
  double; Redis), read from `/proc` right before the work and 0.3 s after the last result.
- **Round trips**: every command each reactor sends, counted by PyMongo's command monitoring
  (`benchmarks/reactor_probe.py`) in runs of their own, so the listener's cost stays out of the
  CPU and latency figures; summed over all reactors; the change streams' `getMore` apart. *Net of
  idle* takes off what the same reactors send in as long a time with no job (their heartbeats).
- **Memory**: resident set (VmRSS) of the main process, and of its process tree.
- **Drains**: jobs queued before one `reactor run` starts; seconds from its start to the last
  result.
- **OCR**: the same 300 dpi pages through raw `tesseract` (one process per core at a time,
  `OMP_THREAD_LIMIT=1`), the reactor's `ocr` handler (`cpu_workers` = cores) and a Celery task
  running that handler's code (`--concurrency` = cores), each after a warm-up batch.
"""


def markdown(results: Doc) -> str:
    s = results["summary"]
    stem = "results-quick" if results["mode"] == "quick" else "results"
    intro = (
        "# Benchmarks: mongo-reactor and Celery 5 + Redis, one interleaved run\n\n"
        f"`{results['command']}`: {results['mode']} sizes, {results['sizes']['rounds']} "
        f"round(s), started {results['started_at']}, {results['duration_s'] / 60:.0f} min. "
        f"Every round's raw figures are in `{stem}.json`. A figure is the median of the rounds, "
        "each round's value in brackets; a ratio is taken within each round. These are "
        "measurements; the targets are set beside them in their own table."
    )
    sections = [
        intro,
        "## Machine and load\n\n" + machine_table(results),
        "## Side by side\n\n" + side_by_side(s),
        "## Targets\n\n" + targets_table(s),
        "## Load during each case\n\nCores kept busy by processes that are not the bench's "
        "(other engineers' test suites, for instance) / cores left idle, out of "
        f"{results['machine']['cores']}, while each case ran (its servers' start-up included):"
        "\n\n" + conditions_table(s),
        "## mongo-reactor alone\n\n" + reactor_alone(s),
        "## A document workflow\n\nThe shipped `ocr_document` template (split, prepare and OCR "
        "per page in batches of 2, join) on a 12-page TIFF against a one-page one, interleaved, "
        f"{results['sizes']['rounds']} round(s) (`benchmarks/bench_workflow_ocr.py`); issue 16 "
        "asks for a ratio under 0.65 on 2 cores.\n\n" + workflow_table(results),
        "## The double alone\n\n" + double_alone(results),
        "## Method\n\n" + METHOD,
    ]
    return "\n\n".join(sections).rstrip() + "\n"
