"""Run PyMongo's own asynchronous test modules against the MongoDB double and count the outcome.

``make fidelity`` (or ``python scripts/fidelity.py [module ...]``):

1. downloads the source distribution of the *installed* PyMongo version from the package index
   (``pip download --no-binary :all: --no-deps pymongo==<version>``) into ``.fidelity/``;
2. copies its ``test/`` package and pytest configuration into a run directory (without the
   sdist's ``pymongo``/``bson``/``gridfs`` sources, so the installed driver is the one tested);
3. for each module, starts a fresh double in its own process (``reactor dev-mongo --port 0``),
   points the suite at it with ``DB_IP``/``DB_PORT`` (read by ``test/helpers_shared.py``) and runs
   pytest with a per-test timeout, so a hang is bounded and counted;
4. prints passed, failed and skipped counts per module, sorts every failure by the classes in
   ``scripts/fidelity_known.toml`` (refused, environment, hang, spurious, silent) and lists the
   failures nobody has classified, the classified tests that now pass (an exact entry, or one a
   pattern covers) and the patterns that match no failure.

Exit status 0 when every failure is classified and no entry of the file names a passing test or
matches no failure at all, 1 otherwise. ``--json PATH`` writes the counts.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tarfile
import time
import tomllib
from collections import Counter
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import IO, Any

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / ".fidelity"
KNOWN = ROOT / "scripts" / "fidelity_known.toml"
CLASSES = ("refused", "environment", "hang", "spurious", "silent")
MODULES = (
    "test_change_stream",
    "test_collection",
    "test_crud_unified",
    "test_retryable_writes",
    "test_retryable_writes_unified",
    "test_retryable_reads",
    "test_retryable_reads_unified",
    "test_cursor",
    "test_session",
    "test_bulk",
    "test_client_bulk_write",
    "test_command_monitoring",
    "test_causal_consistency",
    "test_gridfs_bucket",
    "test_client",
    "test_transactions",
)
_URI = re.compile(r"mongodb://([^:/]+):(\d+)/")


@dataclass
class ModuleResult:
    """One module's outcome: test ids by outcome, and how the run ended."""

    module: str
    passed: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # test id -> first line of the failure
    skipped: list[str] = field(default_factory=list)
    hung: set[str] = field(default_factory=set)
    not_run: list[str] = field(default_factory=list)
    note: str = ""


def sdist_tests(pymongo_version: str) -> Path:
    """The run directory holding the sdist's ``test/`` package (downloaded once, then reused)."""
    run_dir = CACHE / f"pymongo-{pymongo_version}"
    if (run_dir / "test" / "asynchronous").is_dir():
        return run_dir
    dist = CACHE / "dist"
    dist.mkdir(parents=True, exist_ok=True)
    archive = dist / f"pymongo-{pymongo_version}.tar.gz"
    if not archive.exists():
        pip = [sys.executable, "-m", "pip", "download", "--quiet", "--no-binary", ":all:"]
        pip += ["--no-deps", f"pymongo=={pymongo_version}", "-d", str(dist)]
        subprocess.run(pip, check=True)
    prefix = f"pymongo-{pymongo_version}/"
    staging = CACHE / "staging"
    shutil.rmtree(staging, ignore_errors=True)
    with tarfile.open(archive) as tar:
        members = [
            m
            for m in tar.getmembers()
            if m.name.startswith(prefix + "test/") or m.name == prefix + "pyproject.toml"
        ]
        tar.extractall(staging, members, filter="data")
    shutil.rmtree(run_dir, ignore_errors=True)
    (staging / f"pymongo-{pymongo_version}").rename(run_dir)
    shutil.rmtree(staging)
    return run_dir


class Double:
    """A MongoDouble in a child process (``reactor dev-mongo --port 0``), for one module."""

    def __init__(self, log_path: Path) -> None:
        self._log = log_path.open("w")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "reactor.cli", "dev-mongo", "--port", "0"],
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
            cwd=ROOT,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        match = _URI.search(line)
        if match is None:
            self.stop()
            raise RuntimeError(f"the double did not start: {line!r} (see {log_path})")
        self.host, self.port = match.group(1), int(match.group(2))

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()


def run_module(
    run_dir: Path, module: str, test_timeout_s: int, module_timeout_s: int
) -> ModuleResult:
    """Run one test module against a fresh double, again past every hang, until all have run."""
    logs = CACHE / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    events = logs / f"{module}.events.jsonl"
    events.unlink(missing_ok=True)
    double = Double(logs / f"{module}.double.log")
    env = {
        **os.environ,
        "DB_IP": double.host,
        "DB_PORT": str(double.port),
        "FIDELITY_EVENTS": str(events),
        "PYTHONPATH": os.pathsep.join([str(ROOT / "scripts"), os.environ.get("PYTHONPATH", "")]),
    }
    deadline = time.monotonic() + module_timeout_s
    targets = [f"test/asynchronous/{module}.py"]
    result, note = ModuleResult(module), ""
    try:
        with (logs / f"{module}.log").open("w") as out:
            while targets:
                if not _pytest(run_dir, targets, env, out, test_timeout_s, deadline):
                    note = f"module stopped after {module_timeout_s} s"
                result = read_events(module, events)
                targets = [] if note else result.not_run
    finally:
        double.stop()
    result.note = note
    return result


def _pytest(
    run_dir: Path, targets: list[str], env: dict[str, str], out: IO[str], test_timeout_s: int,
    deadline: float,
) -> bool:  # fmt: skip
    """One pytest session on ``targets``; False if it ran into the module's deadline."""
    command = [sys.executable, "-m", "pytest", *targets, "-p", "fidelity_plugin"]
    command += ["-p", "no:cacheprovider", "-p", "no:cov", "-q", "-o", "log_cli=false"]
    command += ["--tb=line"]  # pytest's source rendering trips CPython 3.11.7's ast recursion bug
    command += ["-o", "addopts=", "-m", "default or default_async", "--strict-markers"]
    command += ["--timeout", str(test_timeout_s), "--timeout-method", "thread"]
    remaining_s = deadline - time.monotonic()
    if remaining_s <= 0:
        return False
    try:
        subprocess.run(
            command, cwd=run_dir, env=env, stdout=out, stderr=subprocess.STDOUT,
            timeout=remaining_s, check=False,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        return False
    return True


def read_events(module: str, events: Path) -> ModuleResult:
    """Outcomes from the plugin's JSON lines; a test that started and never tore down hung."""
    result = ModuleResult(module)
    collected: list[str] = []
    outcomes: dict[str, tuple[str, str]] = {}
    started: set[str] = set()
    finished: set[str] = set()
    broken: dict[str, str] = {}  # test id -> pytest internal error while it ran
    current = ""
    lines = events.read_text().splitlines() if events.exists() else []
    for record in map(json.loads, lines):
        if "collected" in record and not collected:
            collected = record["collected"]
        elif "start" in record:
            current = record["start"]
            started.add(current)
        elif "internal" in record:
            broken[current] = record["internal"]
        elif "id" in record:
            outcomes[record["id"]] = _merge(outcomes.get(record["id"]), record)
            if record["when"] == "teardown":
                finished.add(record["id"])
    for test_id in collected:
        if test_id in finished:
            outcome, why = outcomes[test_id]
            if outcome == "failed":
                result.failed[test_id] = why
            elif outcome == "skipped":
                result.skipped.append(test_id)
            else:
                result.passed.append(test_id)
        elif test_id in broken:
            result.failed[test_id] = f"pytest internal error: {broken[test_id]}"
        elif test_id in started:
            result.failed[test_id] = "hang: the test never finished (per-test timeout)"
            result.hung.add(test_id)
        else:
            result.not_run.append(test_id)
    return result


def _merge(seen: tuple[str, str] | None, record: dict[str, str]) -> tuple[str, str]:
    """A test's outcome over its phases: any failure wins, then a skip, then a pass."""
    outcome = record["outcome"]
    if seen is not None and (seen[0] == "failed" or outcome == "passed"):
        return seen
    if outcome == "failed" and record["when"] != "call":
        return outcome, f"{record['when']}: {record['why']}"
    return outcome, record["why"]


class Classification:
    """The known failures: exact test ids or fnmatch patterns, each under one class."""

    def __init__(self, path: Path) -> None:
        data = tomllib.loads(path.read_text()) if path.exists() else {}
        unknown = set(data) - set(CLASSES)
        if unknown:
            raise SystemExit(f"{path}: unknown classes {sorted(unknown)}")
        self._exact: dict[str, str] = {}
        self._patterns: list[tuple[str, str]] = []
        for cls in CLASSES:
            for key in data.get(cls, {}):
                if "*" in key:
                    self._patterns.append((key, cls))
                else:
                    self._exact[key] = cls

    def of(self, test_id: str) -> str | None:
        if test_id in self._exact:
            return self._exact[test_id]
        for pattern, cls in self._patterns:
            if fnmatch.fnmatchcase(test_id, pattern):
                return cls
        return None

    def entry_of(self, test_id: str) -> str | None:
        """The key (exact id or pattern) that classifies ``test_id``, if any."""
        if test_id in self._exact:
            return test_id
        for pattern, _ in self._patterns:
            if fnmatch.fnmatchcase(test_id, pattern):
                return pattern
        return None

    def patterns(self) -> list[str]:
        return [pattern for pattern, _ in self._patterns]


def summarise(
    results: list[ModuleResult], known: Classification, pymongo_version: str
) -> dict[str, Any]:
    """Counts per module and in total, failures by class, and what the classification missed."""
    rows: list[dict[str, Any]] = []
    unclassified: dict[str, str] = {}
    now_passing: list[str] = []
    used: set[str] = set()
    totals: Counter[str] = Counter()
    for result in results:
        by_class: Counter[str] = Counter()
        for test_id, message in result.failed.items():
            cls = "hang" if test_id in result.hung else known.of(test_id)
            used.add(known.entry_of(test_id) or "")
            if cls is None:
                unclassified[test_id] = message
                cls = "unclassified"
            by_class[cls] += 1
        for test_id in result.passed:
            entry = known.entry_of(test_id)
            if entry is not None:
                now_passing.append(test_id if entry == test_id else f"{test_id} (by {entry})")
        row = {
            "module": result.module,
            "passed": len(result.passed),
            "failed": len(result.failed),
            "skipped": len(result.skipped),
            **{cls: by_class[cls] for cls in (*CLASSES, "unclassified")},
            "note": result.note,
        }
        rows.append(row)
        totals.update({k: v for k, v in row.items() if isinstance(v, int)})
    return {
        "pymongo": pymongo_version,
        "date": time.strftime("%Y-%m-%d"),
        "modules": rows,
        "total": dict(totals),
        "unclassified": unclassified,
        "now_passing": sorted(now_passing),
        "unused_patterns": _unused_patterns(results, known, used),
    }


def _unused_patterns(
    results: list[ModuleResult], known: Classification, used: set[str]
) -> list[str]:
    """Patterns that match none of the failures of the modules they can name.

    A pattern naming its module counts once that module ran; a pattern starting with ``*`` only
    when every module ran.
    """
    ran = {result.module for result in results}
    everything = ran >= set(MODULES)
    paths = {f"test/asynchronous/{module}.py" for module in ran}
    covers = [
        p
        for p in known.patterns()
        if (everything if p.startswith("*") else p.split("::")[0] in paths)
    ]
    return sorted(p for p in covers if p not in used)


def print_summary(summary: dict[str, Any]) -> None:
    columns = ("passed", "failed", "skipped", *CLASSES, "unclassified")
    header = f"{'module':32}" + "".join(f"{c[:8]:>9}" for c in columns)
    print(f"PyMongo {summary['pymongo']} test suite against the double, {summary['date']}")
    print(header)
    for row in [*summary["modules"], {"module": "TOTAL", **summary["total"], "note": ""}]:
        cells = "".join(f"{row.get(c, 0):>9}" for c in columns)
        print(f"{row['module']:32}{cells}  {row['note']}".rstrip())
    for test_id, message in sorted(summary["unclassified"].items()):
        print(f"UNCLASSIFIED {test_id}: {message}")
    for test_id in summary["now_passing"]:
        print(f"NOW PASSING (remove or narrow its entry in {KNOWN.name}) {test_id}")
    for pattern in summary["unused_patterns"]:
        print(f"UNUSED PATTERN (matches no failure; remove from {KNOWN.name}) {pattern}")


def _exit_on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)  # unwinds run_module, which stops its double and pytest


def main(argv: list[str] | None = None) -> int:
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("modules", nargs="*", default=list(MODULES), help="test modules to run")
    parser.add_argument("--test-timeout-s", type=int, default=60, help="per-test bound")
    parser.add_argument("--module-timeout-s", type=int, default=2400, help="per-module bound")
    parser.add_argument("--json", type=Path, help="also write the summary as JSON here")
    parser.add_argument(
        "--report-only", action="store_true", help="summarise the last run's logs, run nothing"
    )
    ns = parser.parse_args(argv)
    pymongo_version = version("pymongo")
    known = Classification(KNOWN)
    results = []
    if ns.report_only:
        results = [read_events(m, CACHE / "logs" / f"{m}.events.jsonl") for m in ns.modules]
    else:
        run_dir = sdist_tests(pymongo_version)
    for module in [] if ns.report_only else ns.modules:
        print(f"running {module} ...", file=sys.stderr, flush=True)
        results.append(run_module(run_dir, module, ns.test_timeout_s, ns.module_timeout_s))
    summary = summarise(results, known, pymongo_version)
    print_summary(summary)
    if ns.json:
        ns.json.write_text(json.dumps(summary, indent=2) + "\n")
    stale = summary["now_passing"] or summary["unused_patterns"]
    return 1 if summary["unclassified"] or stale else 0


if __name__ == "__main__":
    sys.exit(main())
