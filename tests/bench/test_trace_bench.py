"""bench/trace.py measures the trace's CPU cost per request and reports it as JSON."""

from __future__ import annotations

import json
from pathlib import Path

from bench import trace


def test_the_trace_bench_reports_its_cost_against_an_adds_cpu(tmp_path: Path) -> None:
    out = tmp_path / "trace.json"
    trace.main(["--requests", "300", "--out", str(out)])
    report = json.loads(out.read_text())
    assert report["requests"] == 300
    assert report["cpu_us_per_request_traced"] > 0
    assert report["trace_cost_cpu_us"] >= 0
    assert report["target"] == 0.02
    assert set(report) >= {"date", "loadavg_1min", "cni_cpu_ms_per_add", "trace_share_of_add_cpu"}
