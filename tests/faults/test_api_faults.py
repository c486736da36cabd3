"""API writes while MongoDB is away (issue 17's new way to fail): a job and a workflow posted
through /api during a blackhole, then a refusal, are answered 503 within REACTOR_API_TIMEOUT_S
(never held open), /healthz stays 200, and once the link heals the same requests sent again land
exactly once: 201, or 409 when the first write had landed after all. Every job so submitted runs
once, the workflow's steps once each. Two reactors, each serving the API."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from tests.faults.fault_checks import (
    PROBE_BOUND_S,
    Checks,
    check_alive_and_processing,
    check_one_outcome_each,
    check_single_execution,
    fault_window,
)
from tests.faults.fault_harness import Cluster, JobSpec
from tests.faults.fault_processes import ReactorProcess, wait_until
from tests.faults.workflow_checks import check_one_job_per_element, job_ids, steps, wait_workflow

pytestmark = [pytest.mark.faults, pytest.mark.timeout(300)]

TOKEN = "fault-suite-token"
API_TIMEOUT_S = 3.0
ANSWER_BOUND_S = API_TIMEOUT_S + 7.0  # the deadline, plus a loaded machine's slack
HEAL_BOUND_S = 30.0  # the same request lands this long after the link heals, at the latest
PAGES = 4


def post(reactor: ReactorProcess, path: str, body: dict[str, Any]) -> tuple[int, float, Any]:
    """Status, seconds taken and body of one POST (the client gives up after 60 s)."""
    began = time.monotonic()
    answer = httpx.post(f"http://127.0.0.1:{reactor.http_port}{path}", json=body, timeout=60,
                        headers={"Authorization": f"Bearer {TOKEN}"})  # fmt: skip
    return answer.status_code, time.monotonic() - began, answer.json()


def requests(tag: str) -> list[tuple[str, dict[str, Any]]]:
    job = JobSpec(f"{tag}-job", "loop_job", 0.5)
    workflow = {"workflow_id": f"{tag}-wf", "steps": steps(PAGES, {"seconds": 0.2})}
    posted = {"job_id": job.job_id, "command": job.command, "args": job.doc()["args"]}
    return [("/api/jobs", posted), ("/api/workflows", workflow)]


def check_refused_in_time(checks: Checks, reactor: ReactorProcess, tag: str, cut: str) -> None:
    for path, body in requests(tag):
        with checks.check(f"POST {path} during the {cut} answers 503 within the bound"):
            status, took, answer = post(reactor, path, body)
            checks.measured[f"{cut}_{path}_s"] = round(took, 2)
            assert status == 503, (status, answer)
            assert answer["error"]["type"] == "mongodb_unavailable"
            assert took <= ANSWER_BOUND_S, f"answered after {took:.1f} s"
    with checks.check(f"/healthz stays 200 during the {cut}"):
        assert reactor.healthz() == 200


def send_again(checks: Checks, reactor: ReactorProcess, tag: str) -> None:
    """Each request, sent again until MongoDB answers, lands: 201, or 409 if it had."""
    for path, body in requests(tag):
        with checks.check(f"POST {path} sent again after the fault lands once"):
            found = wait_until(lambda p=path, b=body: _landed(reactor, p, b), HEAL_BOUND_S,
                               f"{path} answered", 0.5)  # fmt: skip
            assert found in (201, 409), found


def _landed(reactor: ReactorProcess, path: str, body: dict[str, Any]) -> int | None:
    status, _, _ = post(reactor, path, body)
    return None if status == 503 else status


def test_api_writes_while_mongodb_is_away_answer_503_and_land_once_after(make_cluster) -> None:
    """Blackholed, then refused: each POST answers 503 in time; after the link heals, each sent
    again lands once, its job runs once and its workflow's steps once each."""
    cluster: Cluster = make_cluster(reactors=2, api_token=TOKEN, api_timeout_s=API_TIMEOUT_S,
                                    connect_timeout_s=2)  # fmt: skip
    front = cluster.reactors[0]
    checks = Checks(cluster, "api-writes")
    with fault_window():
        cluster.proxy.blackhole()
        check_refused_in_time(checks, front, "hole", "blackhole")
        cluster.proxy.refuse()
        check_refused_in_time(checks, front, "refused", "refusal")
    cluster.proxy.forward()
    for tag in ("hole", "refused"):
        send_again(checks, front, tag)
    ids = [f"{tag}-job" for tag in ("hole", "refused")]
    steps_ = [j for tag in ("hole", "refused") for j in job_ids(f"{tag}-wf", PAGES)]
    cluster.submitted.update({j: JobSpec(j, "", 0.0) for j in [*ids, *steps_]})
    with checks.check("each job posted ran once, with one outcome"):
        cluster.wait_final(ids, HEAL_BOUND_S)
        check_one_outcome_each(cluster, ids)
        check_single_execution(cluster, ids)
    for tag in ("hole", "refused"):
        with checks.check(f"the {tag} workflow succeeded with one job per step element"):
            assert wait_workflow(cluster, f"{tag}-wf")["status"] == "succeeded"
            check_one_job_per_element(cluster, f"{tag}-wf", PAGES)
            check_single_execution(cluster, job_ids(f"{tag}-wf", PAGES))
    with checks.check("alive and processing after the fault"):
        check_alive_and_processing(cluster, cluster.reactors, PROBE_BOUND_S, "api")
    checks.verify()
