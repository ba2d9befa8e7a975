"""A smoke run of the API server benchmark with a handful of nodes and watchers."""

from __future__ import annotations

import json
from pathlib import Path

from bench import apiserver


def test_benchmark_smoke_run(tmp_path: Path) -> None:
    output = tmp_path / "apiserver.json"
    argv = ["--nodes", "50", "--watchers", "5", "--changes", "3", "--lists", "3"]
    assert apiserver.main([*argv, "--output", str(output)]) == 0
    run = json.loads(output.read_text())["backends"]["sqlite"]
    assert run["nodes"] == 50 and run["list_bytes"] > 50 * 200
    assert run["missed_deliveries"] == 0
    assert run["watch_delivery_ms"]["p99"] is not None
