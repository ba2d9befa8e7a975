"""The cluster commands, run as a user runs them: `python -m podnet.cli.main ...`."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.backends import Backend


def podnet(*args: str, store: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PODNET_STORE": store}
    result = subprocess.run(
        [sys.executable, "-m", "podnet.cli.main", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    if check:
        assert result.returncode == 0, result.stderr
    return result


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite://{tmp_path}/cluster.db"


def start_controller(store: str, *flags: str) -> tuple[subprocess.Popen[str], int]:
    """`podnet nodeipam run` in the background; returns it and its metrics port."""
    process = subprocess.Popen(
        [sys.executable, "-m", "podnet.cli.main", "nodeipam", "run", "--store", store,
         "--metrics-port", "0", *flags],
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    assert process.stderr is not None
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        line = process.stderr.readline()
        found = re.search(r"metrics on http://127\.0\.0\.1:(\d+)/metrics", line)
        if found:
            # Keep reading its log, so a full pipe never blocks it.
            threading.Thread(target=process.stderr.read, daemon=True).start()
            return process, int(found.group(1))
        if not line and process.poll() is not None:
            break
    process.kill()
    process.wait()
    process.stderr.close()
    raise AssertionError("controller did not start")


def stop(process: subprocess.Popen[str]) -> int:
    process.send_signal(signal.SIGTERM)
    try:
        return process.wait(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        if process.stderr is not None:
            process.stderr.close()


def test_register_allocate_and_get(backend: Backend) -> None:
    url = backend.url
    assert podnet("node", "register", "n1", "--address", "192.0.2.10", store=url).stdout == (
        "node/n1 registered\n"
    )
    podnet("node", "register", "n2", "--address", "192.0.2.20", "--annotation", "k=v", store=url)
    before = json.loads(podnet("get", "node", "n1", "-o", "json", store=url).stdout)
    assert before["spec"] == {}

    controller, port = start_controller(url, "--cluster-cidr", "10.244.0.0/16")
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            node = json.loads(podnet("get", "node", "n2", "-o", "json", store=url).stdout)
            if node["spec"].get("podCIDR"):
                break
            time.sleep(0.1)
        metrics = httpx.get(f"http://127.0.0.1:{port}/metrics").text
        assert 'podnet_nodeipam_cidrset_allocated_blocks{cidr="10.244.0.0/16"} 2' in metrics
    finally:
        assert stop(controller) == 0

    # As in the walk-through: get node -o json | jq .spec.podCIDR
    n1 = json.loads(podnet("get", "node", "n1", "-o", "json", store=url).stdout)
    assert n1["kind"] == "Node" and n1["apiVersion"] == "v1"
    assert n1["spec"]["podCIDR"] == "10.244.0.0/24"
    assert n1["spec"]["podCIDRs"] == ["10.244.0.0/24"]
    assert n1["status"]["addresses"] == [{"type": "InternalIP", "address": "192.0.2.10"}]
    assert int(n1["metadata"]["resourceVersion"]) > int(before["metadata"]["resourceVersion"])

    listing = json.loads(podnet("get", "nodes", "-o", "json", store=url).stdout)
    assert listing["kind"] == "List"
    assert [(i["metadata"]["name"], i["spec"]["podCIDR"]) for i in listing["items"]] == [
        ("n1", "10.244.0.0/24"),
        ("n2", "10.244.1.0/24"),
    ]

    table = podnet("get", "nodes", store=url).stdout.splitlines()
    assert table[0].split() == ["NAME", "POD-CIDR", "INTERNAL-IP", "AGE"]
    assert table[1].split()[:3] == ["n1", "10.244.0.0/24", "192.0.2.10"]
    wide = podnet("get", "nodes", "-o", "wide", store=url).stdout.splitlines()
    assert wide[2].split()[-1] == "k=v"
    yaml = podnet("get", "no", "n2", "-o", "yaml", store=url).stdout
    assert "spec:\n  podCIDR: 10.244.1.0/24\n  podCIDRs:\n  - 10.244.1.0/24\n" in yaml
    assert podnet("get", "nodes", "-o", "name", store=url).stdout == "node/n1\nnode/n2\n"

    assert podnet("node", "delete", "n1", store=url).stdout == 'node "n1" deleted\n'
    assert podnet("get", "nodes", "-o", "name", store=url).stdout == "node/n2\n"


def test_events_and_plan(sqlite_url: str) -> None:
    for name in ("a", "b", "c"):
        podnet("node", "register", name, store=sqlite_url)
    controller, _ = start_controller(sqlite_url, "--cluster-cidr", "10.0.0.0/23")
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            events = json.loads(podnet("get", "events", "-o", "json", store=sqlite_url).stdout)
            if events["items"]:
                break
            time.sleep(0.1)
    finally:
        assert stop(controller) == 0
    (event,) = events["items"]
    assert event["reason"] == "CIDRNotAvailable" and event["type"] == "Warning"
    assert event["involvedObject"]["name"] == "c"
    table = podnet("get", "events", store=sqlite_url).stdout.splitlines()
    assert table[0].split() == ["LAST", "SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"]
    assert (
        "Warning   CIDRNotAvailable   node/c   Node c status is now: CIDRNotAvailable" in table[1]
    )

    plan = podnet("nodeipam", "plan", "--cluster-cidr", "10.0.1.0/24", store=sqlite_url)
    rows = {line.split()[0]: line.split()[2] for line in plan.stdout.splitlines()[1:]}
    assert rows == {"a": "OUTSIDE", "b": "KEEP", "c": "WAIT"}
    as_json = json.loads(
        podnet(
            "nodeipam", "plan", "--cluster-cidr", "10.0.0.0/16", "-o", "json", store=sqlite_url
        ).stdout
    )
    assert [(e["node"], e["action"]) for e in as_json] == [
        ("a", "keep"),
        ("b", "keep"),
        ("c", "allocate"),
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["node", "delete", "ghost"], 'podnet: nodes "ghost" not found'),
        (["get", "node", "ghost"], 'podnet: nodes "ghost" not found'),
        (["get", "events", "x"], "podnet: get events takes no name"),
        (["node", "register", "UPPER"], 'podnet: Node "UPPER" is invalid: metadata.name'),
        (
            ["node", "register", "n", "--address", "nope"],
            'status.addresses[0].address: Invalid value: "nope"',
        ),
        (
            ["node", "register", "n", "--annotation", "novalue"],
            "podnet: --annotation 'novalue': want KEY=VALUE",
        ),
        (
            ["nodeipam", "run", "--cluster-cidr", "10.0.0.0/16,10.1.0.0/16"],
            "podnet: len of ClusterCIDRs==2 and they are not configured as dual stack",
        ),
        (
            [
                "nodeipam",
                "run",
                "--cluster-cidr",
                "10.0.0.0/16,fd00::/56",
                "--node-cidr-mask-size",
                "24",
            ],
            "podnet: usage of --node-cidr-mask-size is not allowed with dual-stack clusters",
        ),
        (
            ["nodeipam", "plan", "--cluster-cidr", "10.0.0.0/25"],
            "podnet: Controller: Invalid --cluster-cidr, mask size of cluster CIDR must be less",
        ),
        (
            ["nodeipam", "run", "--cluster-cidr", "10.0.0.0/16", "--kubeconfig", "/nonexistent"],
            "podnet: kubeconfig /nonexistent does not exist",
        ),
        (
            [
                "nodeipam",
                "run",
                "--cluster-cidr",
                "10.0.0.0/16",
                "--kubeconfig",
                "k",
                "--store",
                "sqlite:///tmp/x.db",
            ],
            "podnet: --kubeconfig and --store: give one",
        ),  # fmt: skip
        (
            [
                "nodeipam",
                "run",
                "--cluster-cidr",
                "10.0.0.0/16",
                "--kubeconfig",
                "k",
                "--leader-elect-renew-deadline",
                "20s",
            ],
            "podnet: leaseDuration must be greater than renewDeadline",
        ),  # fmt: skip
        (
            ["get", "nodes", "--store", "nosuch://x"],
            "podnet: store URL 'nosuch://x': unknown scheme",
        ),
        (
            ["node", "register", "n", "--store", "etcd://127.0.0.1:1"],
            "podnet: etcd: no endpoint answered",
        ),
    ],
)
def test_errors_are_one_line_and_non_zero(sqlite_url: str, args: list[str], message: str) -> None:
    result = podnet(*args, store=sqlite_url, check=False)
    assert result.returncode == 1
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert message in lines[0]


def test_registering_twice(sqlite_url: str) -> None:
    podnet("node", "register", "n1", store=sqlite_url)
    result = podnet("node", "register", "n1", store=sqlite_url, check=False)
    assert (result.returncode, result.stderr) == (1, 'podnet: nodes "n1" already exists\n')
