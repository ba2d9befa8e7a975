"""A smoke run of the CNI benchmark: a few pods through every implementation, with and
without masquerade, and what it reports."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from bench import cni

pytestmark = pytest.mark.root


def test_benchmark_smoke_run(tmp_path: Path) -> None:
    out = tmp_path / "cni.json"
    args = ["--pods", "3", "--concurrency", "2", "--reps", "1", "--masq", "both", "--settle", "0"]
    assert cni.main([*args, "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    assert {r["impl"] for r in report["runs"]} == {i.name for i in cni.IMPLS}
    assert report["reps"] == 1 and report["date"] and report["machine"]["cpus"]
    assert report["machine"]["cpu_model"] and report["machine"]["kernel"]
    assert len(report["machine"]["loadavg_at_start"]) == 3
    assert all(len(r["loadavg_1min"]) == 2 for r in report["runs"])
    assert all(r["settle_s"] == 0.0 for r in report["runs"])
    for run in report["runs"]:
        assert run["add"]["errors"] == 0 and run["del"]["errors"] == 0, run["impl"]
        assert run["distinct_ips"] == 3 and run["leftover_reservations"] == 0
        assert len(run["add"]["latencies_ms"]) == 3
        assert run["add"]["cpu_ms_per_pod"] > 0
    podnet_rows = [r for r in report["summary"] if r["impl"] != cni.REFERENCE]
    assert len(podnet_rows) == 6 and all("ratio_add_p50_ms" in r for r in podnet_rows)
    judged = {(t["target"], t["impl"]) for t in report["targets"]}
    assert judged == {
        ("DEL p50 (no masq) <= 0.5", cni.LAUNCHER),
        ("CPU per ADD (no masq) <= 0.5", cni.LAUNCHER),
        ("in-process ADD p50 (no masq) <= 3.0", cni.IN_PROCESS),
    }, "the others are judged at concurrency 1 or 4 only"
    assert out.with_suffix(".png").stat().st_size > 10_000


def test_every_option_names_its_default() -> None:
    parser = cni.build_parser()
    assert parser.parse_args([]).reps == 3, "the README's table is the median of 3 reps"
    options = [a for a in parser._actions if a.option_strings and a.dest != "help"]
    assert len(options) == 9
    for action in options:
        assert action.help is not None, action.dest
        shown = (action.help % {"default": action.default}).split("(default: ")[1]
        if isinstance(action.default, list):
            assert shown == " ".join(map(str, action.default)) + ")", action.dest
        elif action.dest == "out":
            assert action.default.endswith(shown[:-1]), action.dest
        elif action.default is not None:
            assert shown == f"{action.default})", action.dest


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

    agent = cni.LAUNCHER
    runs = [run(cni.REFERENCE, 10.0, 100.0), run(cni.REFERENCE, 12.0, 80.0)]
    runs += [run(agent, 5.0, 160.0), run(agent, 30.0, 50.0), run(agent, 6.0, 150.0)]
    rows = cni.summarize(runs)
    mine = next(r for r in rows if r["impl"] == agent)
    assert (mine["add_p50_ms"], mine["ratio_add_p50_ms"]) == (6.0, 0.55)  # medians: 6 / 11
    assert mine["ratio_add_pods_per_s"] == round(150.0 / 90.0, 2)
    verdicts = {t["target"]: t["met"] for t in cni.targets(rows)}
    assert verdicts == {
        "ADD p50 (no masq) <= 0.6": True,
        "DEL p50 (no masq) <= 0.5": False,
        "ADD pods/s at c4 (no masq) >= 1.5": True,
        "CPU per ADD (no masq) <= 0.5": False,
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
    assert "| off | 4 | podnet launcher | 6 (0.55) |" in table


def test_an_agent_deaf_to_sigterm_is_killed(capfd: pytest.CaptureFixture[str]) -> None:
    """The run's clean-up (its namespaces) must not wait on an agent that hangs."""
    deaf = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import signal, sys, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
            "print('ready', flush=True); time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
    )
    assert deaf.stdout is not None and deaf.stdout.readline() == b"ready\n"
    deaf.stdout.close()
    cni.stop_agent(deaf, grace=0.5)
    assert deaf.returncode == -signal.SIGKILL
    assert f"agent {deaf.pid} still running 0.5 s after SIGTERM: killed" in capfd.readouterr().err


def test_settle_waits_for_an_idle_machine_within_its_deadline() -> None:
    assert cni.settle(0) == 0.0  # --settle 0: no wait at all
    assert cni.settle(30, min_idle=0.0) == 0.5  # any machine is 0% idle: one window
    assert 1.0 <= cni.settle(1.0, min_idle=1.01) < 2.0  # never that idle: the deadline
