"""A smoke run of the CNI benchmark: a few pods through every implementation, with and
without masquerade, and what it reports."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import cni

pytestmark = pytest.mark.root


def test_benchmark_smoke_run(tmp_path: Path) -> None:
    out = tmp_path / "cni.json"
    args = ["--pods", "3", "--concurrency", "2", "--reps", "1", "--masq", "both"]
    assert cni.main([*args, "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    assert {r["impl"] for r in report["runs"]} == {i.name for i in cni.IMPLS}
    for run in report["runs"]:
        assert run["add"]["errors"] == 0 and run["del"]["errors"] == 0, run["impl"]
        assert run["distinct_ips"] == 3 and run["leftover_reservations"] == 0
        assert len(run["add"]["latencies_ms"]) == 3
        assert run["add"]["cpu_ms_per_pod"] > 0
    agent_rows = [r for r in report["summary"] if "(agent)" in r["impl"]]
    assert len(agent_rows) == 4 and all("ratio_add_p50_ms" in r for r in agent_rows)
    assert {t["target"] for t in report["targets"]} == {
        "ADD p50 (no masq) <= 1.0",
        "DEL p50 (no masq) <= 1.0",
        "ADD p50 with ipMasq <= 0.6",
    }, "pods/s is judged at concurrency 4 only"
    assert out.with_suffix(".png").stat().st_size > 10_000


def test_summary_ratios_and_targets() -> None:
    def run(impl: str, p50: float, rate: float) -> dict[str, object]:
        phase = {
            "p50_ms": p50,
            "p90_ms": p50,
            "p99_ms": p50,
            "pods_per_s": rate,
            "cpu_ms_per_pod": 1.0,
            "errors": 0,
        }
        return {
            "impl": impl,
            "concurrency": 4,
            "ipMasq": False,
            "loadavg_1min": [1.0, 1.0],
            "add": phase,
            "del": phase,
        }

    agent = cni.IMPLS[1].name
    runs = [run(cni.REFERENCE, 10.0, 100.0), run(cni.REFERENCE, 12.0, 80.0)]
    runs += [run(agent, 9.0, 110.0), run(agent, 30.0, 50.0), run(agent, 11.0, 90.0)]
    rows = cni.summarize(runs)
    mine = next(r for r in rows if r["impl"] == agent)
    assert (mine["add_p50_ms"], mine["ratio_add_p50_ms"]) == (11.0, 1.0)  # medians: 11 / 11
    assert mine["ratio_add_pods_per_s"] == round(90.0 / 90.0, 2)
    verdicts = {t["target"]: t["met"] for t in cni.targets(rows)}
    assert verdicts == {
        "ADD p50 (no masq) <= 1.0": True,
        "DEL p50 (no masq) <= 1.0": True,
        "ADD pods/s at c4 (no masq) >= 1.0": True,
    }
    table = cni.markdown_table(
        {
            "date": "2026-01-01",
            "pods": 3,
            "reps": 2,
            "machine": {"cpus": 2, "loadavg_at_start": [1.0, 1.0, 1.0]},
            "summary": rows,
            "targets": cni.targets(rows),
        }
    )
    assert "| off | 4 | podnet bridge | 11 (1.00) |" in table
