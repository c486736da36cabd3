"""What every workflow scenario asserts, beside the promises of ``fault_checks.py``:

1. **One job per step element.** The workflow's step jobs are exactly the ids its definition
   makes (``<workflow>.<step>`` and ``<workflow>.<step>.<i>``), each final with one result.
2. **One final workflow state.** Watched through a change stream from before the insert, the
   workflow's status becomes final once and never changes after, and ``finished_at`` is set
   once.
3. **No step run while its inputs were incomplete.** Every step passes on the token of the
   execution whose result it was given: each element came from the split execution that ended,
   the join got every element's result in order, and every execution of a step started after
   the executions that produced its inputs had ended.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

import pymongo

from tests.faults.fault_harness import Cluster, JobSpec
from tests.faults.fault_processes import wait_until
from tests.faults.fault_records import Execution, now

Doc = dict[str, Any]
TERMINAL = frozenset({"succeeded", "failed", "cancelled"})
WORKFLOW_BOUND_S = 60.0  # a workflow is final this long after the fault, at the latest


def steps(n: int, split: Doc, page: str = "wf_page", **page_args: Any) -> list[Doc]:
    """split (with ``split`` args) -> one page job per element -> join."""
    return [
        {"name": "split", "command": "wf_split", "args": {"n": n, **split}},
        {"name": "pages", "command": page, "after": ["split"],
         "for_each": {"$result": "split.items"}, "args": {"item": {"$item": ""}, **page_args}},
        {"name": "join", "command": "wf_join", "after": ["pages"],
         "args": {"parts": {"$result": "pages"}, "seconds": 1.0}},
    ]  # fmt: skip


def job_ids(workflow_id: str, n: int) -> list[str]:
    return [f"{workflow_id}.split", *(f"{workflow_id}.pages.{i}" for i in range(n)),
            f"{workflow_id}.join"]  # fmt: skip


@dataclass
class StatusLog:
    """Every status and ``finished_at`` a workflow's updates set, in order (a change stream of
    the test's own client, opened before the workflow exists)."""

    cluster: Cluster
    events: list[tuple[str | None, bool]] = field(default_factory=list)
    _ready: threading.Event = field(default_factory=threading.Event)
    _stop: threading.Event = field(default_factory=threading.Event)

    def start(self) -> StatusLog:
        threading.Thread(target=self._watch, daemon=True).start()
        assert self._ready.wait(30), "the status watcher did not start"
        return self

    def stop(self) -> None:
        self._stop.set()

    def _watch(self) -> None:
        client: pymongo.MongoClient[Doc] = pymongo.MongoClient(self.cluster.double.direct_uri)
        try:
            with client[self.cluster.db_name].workflows.watch(max_await_time_ms=200) as stream:
                self._ready.set()
                while not self._stop.is_set():
                    change = stream.try_next()
                    if change is not None:
                        self._record(change)
        finally:
            client.close()

    def _record(self, change: Doc) -> None:
        fields = change.get("fullDocument") or (change.get("updateDescription") or {}).get(
            "updatedFields", {}
        )
        if "status" in fields or "finished_at" in fields:
            self.events.append((fields.get("status"), fields.get("finished_at") is not None))


def submit_workflow(cluster: Cluster, workflow_id: str, definition: list[Doc], n: int) -> None:
    """Insert the workflow; its step jobs count as submitted (results for them are expected)."""
    cluster.db.workflows.insert_one({"workflow_id": workflow_id, "steps": definition})
    cluster.submitted.update({j: JobSpec(j, "", 0.0) for j in job_ids(workflow_id, n)})


def wait_workflow(cluster: Cluster, workflow_id: str, timeout_s: float = WORKFLOW_BOUND_S) -> Doc:
    def finished() -> Doc | None:
        doc = cluster.db.workflows.find_one({"workflow_id": workflow_id})
        return doc if doc is not None and doc.get("finished_at") else None

    found: Doc = wait_until(finished, timeout_s, f"workflow {workflow_id} to finish", 0.25)
    return found


def check_one_job_per_element(cluster: Cluster, workflow_id: str, n: int) -> None:
    docs = list(cluster.db.jobs.find({"workflow.workflow_id": workflow_id}))
    found = sorted(d["job_id"] for d in docs)
    assert found == sorted(job_ids(workflow_id, n)), f"step jobs {found}"
    unfinished = [d["job_id"] for d in docs if d.get("status") != "succeeded"]
    assert not unfinished, f"not succeeded: {unfinished}"
    counts = {d["job_id"]: 0 for d in docs}
    for result in cluster.db.results.find({"job_id": {"$in": found}}):
        counts[result["job_id"]] += 1
    assert set(counts.values()) == {1}, f"results per job: {counts}"


def check_final_once(log: StatusLog, status: str = "succeeded") -> None:
    statuses = [s for s, _ in log.events if s is not None]
    finals = [i for i, s in enumerate(statuses) if s in TERMINAL]
    assert finals, f"no final status seen: {statuses}"
    after = set(statuses[finals[0] :])
    assert after == {status}, f"statuses after the first final one: {statuses[finals[0] :]}"
    finishes = sum(1 for _, finished in log.events if finished)
    assert finishes == 1, f"finished_at set {finishes} times ({log.events})"


def check_inputs_complete(cluster: Cluster, workflow_id: str, n: int) -> None:
    results = {r["job_id"]: r["result"] for r in
               cluster.db.results.find({"job_id": {"$in": job_ids(workflow_id, n)}})}  # fmt: skip
    runs = cluster.executions()
    split = results[f"{workflow_id}.split"]
    split_end = _ended(runs, f"{workflow_id}.split", split["token"])
    problems = []
    page_ends = []
    for i in range(n):
        page_id = f"{workflow_id}.pages.{i}"
        page = results[page_id]
        if (page["i"], page["from"]) != (i, split["token"]):
            problems.append(f"{page_id} was given element {page['i']} of split {page['from']}")
        problems += _started_after(runs, page_id, split_end)
        page_ends.append(_ended(runs, page_id, page["token"]))
    join_id = f"{workflow_id}.join"
    expected = [results[f"{workflow_id}.pages.{i}"]["token"] for i in range(n)]
    if results[join_id]["parts"] != expected:
        problems.append(f"the join got {results[join_id]['parts']}, not every element in order")
    problems += _started_after(runs, join_id, max(page_ends))
    assert not problems, "\n".join(problems)


def _ended(runs: dict[str, list[Execution]], job_id: str, token: str) -> float:
    found = [e for e in runs.get(job_id, []) if e.token == token and e.ended]
    assert found, f"{job_id}: no ended execution has the result's token {token}"
    return found[0].times[-1]


def _started_after(runs: dict[str, list[Execution]], job_id: str, inputs_ended: float) -> list[str]:
    early = [e for e in runs.get(job_id, []) if e.start < inputs_ended]
    return [f"{job_id} attempt {e.attempt} started {inputs_ended - e.start:.3f} s before its "
            "inputs were complete" for e in early]  # fmt: skip


def wait_split_started(cluster: Cluster, workflow_id: str) -> Execution:
    def started() -> Execution | None:
        return next(iter(cluster.executions().get(f"{workflow_id}.split", [])), None)

    found: Execution = wait_until(started, 60, "the split to start")
    return found


def seconds_until(when: float) -> float:
    return max(0.0, when - now())
