"""`podnet demo`: the walk-through on a real lab, its picture, and nothing left behind."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from podnet.lab import lab_namespaces

pytestmark = [pytest.mark.root, pytest.mark.slow]


def test_the_demo_walks_through_draws_the_cluster_and_leaves_nothing(tmp_path: Path) -> None:
    picture = tmp_path / "demo.svg"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "podnet.cli.main",
            "demo",
            "--nodes",
            "2",
            "--pods-per-node",
            "1",
            "--picture",
            str(picture),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert "connectivity: real ICMP from every pod to every other pod" in out
    assert f"  {picture}\n" in out
    svg = picture.read_text()
    # Dual-stack by default: every pod an address of each family, both matrices printed
    # (the exit code says every pair answered).
    addresses = [
        line.rsplit(": ", 1)[1].split(", ")
        for line in out.splitlines()
        if " on n" in line and ": 10.244." in line
    ]
    assert len(addresses) == 2
    assert all(v4.startswith("10.244.") and v6.startswith("fd00:10:244:") for v4, v6 in addresses)
    assert all(v4 in svg for v4, _ in addresses)
    assert "\nIPv4\n" in out and "\nIPv6\n" in out
    assert "lab down: every namespace, process and file of the demo is gone" in out
    assert lab_namespaces("demo") == []
