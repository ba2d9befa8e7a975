"""A smoke run of the node IPAM benchmark with a handful of nodes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import nodeipam
from podnet.store import EtcdNotInstalled, LocalEtcd


def test_benchmark_smoke_run(tmp_path: Path) -> None:
    try:
        LocalEtcd.binary()
        backends = "sqlite,etcd"
    except EtcdNotInstalled:
        backends = "sqlite"
    output = tmp_path / "nodeipam.json"
    assert nodeipam.main(["--nodes", "40", "--backends", backends, "--output", str(output)]) == 0
    results = json.loads(output.read_text())
    assert results["allocator"]["blocks"] == 65536
    for backend in backends.split(","):
        run = results["controller"][backend]
        assert run["nodes"] == 40
        assert run["controller"]["allocations"] == 40
        assert run["all_assigned_seconds"] > 0
    if backends == "sqlite":
        pytest.skip("etcd is not installed: only the sqlite half ran")
