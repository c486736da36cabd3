"""The processes of the fault suite: the double in its own process and ``reactor run``
processes, with HTTP probes and /proc helpers (/proc is the source of truth for what is alive)."""

from __future__ import annotations

import http.client
import json
import os
import select
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
DOUBLE_SCRIPT = HERE / "fault_double.py"
DOUBLE_HOST, PROXY_HOST = "127.0.0.2", "127.0.0.1"
PROBE_TIMEOUT_S = 3.0  # an HTTP probe without an answer by then counts as "no answer"
START_BOUND_S = 90.0  # a reactor (imports, pool spawn) or the double must be up by then
STOP_BOUND_S = 60.0

Doc = dict[str, Any]


def wait_until(
    condition: Callable[[], Any], timeout_s: float, what: str, every_s: float = 0.2
) -> Any:
    """Poll ``condition`` until it returns something truthy; fail naming ``what`` at the bound."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:g} s waiting for {what}")
        time.sleep(every_s)


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def http_get(port: int, path: str, timeout_s: float = PROBE_TIMEOUT_S) -> tuple[int | None, Doc]:
    """``(status, body)``; status None when nothing answered within ``timeout_s``."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=timeout_s) as r:
            return r.status, _json(r.read())
    except urllib.error.HTTPError as exc:
        return exc.code, _body(exc)
    except (OSError, http.client.HTTPException):  # killed or frozen before or while replying
        return None, {}


def _body(exc: urllib.error.HTTPError) -> Doc:
    """The error response's JSON body; empty when the process stopped before sending it all
    (a SIGSTOP between the status line and the body)."""
    try:
        return _json(exc.read())
    except (OSError, http.client.HTTPException):
        return {}


def _json(data: bytes) -> Doc:
    try:
        body = json.loads(data)
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {"body": body}


def process_alive(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def children_of(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.append(int(entry.name))
    return found


def descendants(pid: int) -> list[int]:
    found, todo = [], [pid]
    while todo:
        for child in children_of(todo.pop()):
            found.append(child)
            todo.append(child)
    return found


def command_line(pid: int) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return "?"
    return raw.replace(b"\0", b" ").decode(errors="replace").strip()[:120]


def carries_marker(pid: int, marker: str) -> bool:
    """Whether ``pid``'s environment holds ``marker`` (only our own processes do)."""
    try:
        return marker.encode() in Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return False


# The double.


class DoubleProcess:
    """``fault_double.py`` in its own process, restartable empty on the same port."""

    def __init__(self, port: int, log_path: Path, marker_env: dict[str, str]) -> None:
        self.port = port
        self.log_path = log_path
        self.env = marker_env
        self.proc: subprocess.Popen[bytes] | None = None
        self.control_port = 0

    @property
    def direct_uri(self) -> str:
        return f"mongodb://{DOUBLE_HOST}:{self.port}/?directConnection=true"

    def start(self) -> None:
        cmd = [sys.executable, str(DOUBLE_SCRIPT), "--host", DOUBLE_HOST, "--port", str(self.port)]
        cmd += ["--advertised-host", PROXY_HOST]
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=log, env=self.env)
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], START_BOUND_S)
        line = self.proc.stdout.readline() if ready else b""
        self.proc.stdout.close()  # it prints that one line only
        if not line:
            self.proc.kill()
            raise AssertionError(f"the double did not start; see {self.log_path}")
        self.control_port = int(json.loads(line)["control_port"])

    def kill(self) -> None:
        """SIGKILL: everything it held is gone, as when mongod dies with its data."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(STOP_BOUND_S)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(STOP_BOUND_S)
            except subprocess.TimeoutExpired:
                self.kill()

    def hook(self, name: str, **kwargs: Any) -> None:
        """Call one of the double's fault hooks in its process."""
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.control_port}/{name}",
            data=json.dumps(kwargs).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=30) as reply:
            assert reply.status == 200, reply.read()

    def pending_failures(self) -> int:
        with urllib.request.urlopen(
            f"http://127.0.0.1:{self.control_port}/pending", timeout=30
        ) as reply:
            return int(json.loads(reply.read())["pending"])


# Reactors.


class ReactorProcess:
    """One ``reactor run`` process with its own HTTP port and log file."""

    def __init__(self, name: str, env: dict[str, str], log_path: Path) -> None:
        self.name = name
        self.http_port = free_port()
        self.env = {**env, "REACTOR_WORKER_NAME": name, "REACTOR_HTTP_PORT": str(self.http_port)}
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self.seen_pids: set[int] = set()  # every pool worker and child seen under it

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self) -> None:
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "reactor.cli", "run"],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.starts += 1

    def wait_serving(self, timeout_s: float = START_BOUND_S) -> None:
        """Until /healthz answers (the reactor connected and started its tasks)."""

        def up() -> bool:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise AssertionError(f"{self.name} exited {self.proc.returncode}: {self.tail()}")
            return http_get(self.http_port, "/healthz", 1.0)[0] == 200

        wait_until(up, timeout_s, f"{self.name} to serve /healthz")

    def send(self, signum: int) -> None:
        if self.alive:
            self.remember_descendants()
            os.kill(self.pid, signum)

    def remember_descendants(self) -> list[int]:
        found = descendants(self.pid) if self.alive else []
        self.seen_pids.update(found)
        return found

    def wait_exit(self, timeout_s: float) -> int | None:
        assert self.proc is not None
        try:
            return self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            return None

    def readyz(self) -> tuple[int | None, Doc]:
        return http_get(self.http_port, "/readyz")

    def healthz(self) -> int | None:
        return http_get(self.http_port, "/healthz")[0]

    def tail(self, n: int = 12) -> str:
        """Its distinct warnings, errors and non-JSON lines (tracebacks), latest last, compact;
        a line repeated with the same event and error shows once, with its count."""
        seen: dict[tuple[str, ...], tuple[int, str]] = {}
        for line in self.log_path.read_text(errors="replace").splitlines():
            try:
                doc = json.loads(line)
            except ValueError:
                key: tuple[str, ...] = ("text", line)
                shown = line[:200]
            else:
                if not isinstance(doc, dict) or doc.get("level") not in {"warning", "error"}:
                    continue
                error = str(doc.get("error", ""))
                job = str(doc.get("job_id", ""))
                key = (str(doc.get("event")), (error.replace(job, "") if job else error)[:50])
                parts = (
                    str(doc.get("timestamp", ""))[11:23],
                    doc.get("level"),
                    doc.get("event"),
                    doc.get("job_id"),
                    doc.get("error_type"),
                    error[:110],
                )
                shown = " ".join(str(part) for part in parts if part)
            count = seen.pop(key, (0, ""))[0] + 1
            seen[key] = (count, shown)
        picked = list(seen.values())[-n:]
        return "\n".join(f"{f'x{c} ' if c > 1 else ''}{line}" for c, line in picked)
