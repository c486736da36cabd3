"""``make bench``: every benchmark, one after the other, with a JSON summary at the end."""

from __future__ import annotations

import json
import os
import platform
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import bench_backlog
import bench_double
import bench_event_latency
import bench_latency


def main() -> None:
    machine = {
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
    }
    summary: dict[str, object] = {"machine": machine, "double_ceiling": bench_double.main()}
    summary["event_latency_while_claiming"] = [
        bench_event_latency.main(["--double", "thread", "--finished", "1000"]),
        bench_event_latency.main(["--double", "process", "--finished", "1000"]),
        bench_event_latency.main(["--double", "process", "--finished", "20000"]),
    ]
    summary["dispatch_latency"] = bench_latency.main()
    summary["backlog_through_reactor_run"] = bench_backlog.main()
    try:
        import bench_ocr
    except ImportError as exc:
        print(f"OCR benchmark unavailable: {exc}")
    else:
        summary["ocr_throughput"] = bench_ocr.main()
    out = Path(__file__).parent / "results.json"
    out.write_text(json.dumps(summary, indent=2, default=str))
    print(f"summary written to {out}")


if __name__ == "__main__":
    main()
