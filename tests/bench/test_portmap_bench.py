"""A smoke run of the hostPort benchmark: a few pods through every implementation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import portmap

pytestmark = pytest.mark.root


def test_benchmark_smoke_run(tmp_path: Path) -> None:
    out = tmp_path / "portmap.json"
    args = ["--pods", "3", "--concurrency", "2", "--reps", "1", "--out", str(out)]
    assert portmap.main(args) == 0
    report = json.loads(out.read_text())
    expected = {i.name for i in portmap.IMPLS if not (i.reference and report["reference_left_out"])}
    assert {r["impl"] for r in report["runs"]} == expected
    for run in report["runs"]:
        assert len(run["add"]["latencies_ms"]) == 3
        assert run["mapped_after_del"] == 0, run["impl"]
        if run["impl"] == portmap.REFERENCE:
            continue  # concurrent ADDs of the reference may race on its shared chains
        assert run["add"]["errors"] == 0 and run["del"]["errors"] == 0, run
        assert run["mapped_after_add"] == 3, run["impl"]
    if not report["reference_left_out"]:
        podnet_rows = [r for r in report["summary"] if r["impl"] != portmap.REFERENCE]
        assert all("ratio_add_p50_ms" in r for r in podnet_rows)
