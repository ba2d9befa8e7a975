"""`podnet pod ...` and `podnet cni status` as a user runs them on a node."""

from __future__ import annotations

import json
import os

import pytest

from tests.runtime.conftest import Node

pytestmark = pytest.mark.root


def ok(done) -> str:
    assert done.returncode == 0, done.stderr
    return str(done.stdout)


def test_pod_lifecycle_from_the_command_line(ref_node: Node) -> None:
    node = ref_node
    node.write_conflist(node.bridge(), {"type": "loopback"})

    text = ok(node.cli("pod", "run", "web", "--namespace", "shop"))
    lines = dict(line.split(None, 1) for line in text.splitlines())
    assert lines["pod"] == "shop/web"
    assert lines["netns"].startswith(os.path.join(node.netns_dir, "cni-"))
    assert lines["ip"] == "10.244.1.2"

    pod = json.loads(ok(node.cli("pod", "run", "db", "-n", "shop", "-o", "json")))
    assert pod["ip"] == "10.244.1.3" and pod["pod"] == "db" and pod["namespace"] == "shop"
    assert pod["cniVersion"] == "1.0.0"
    assert {"address": "10.244.1.3/24", "gateway": "10.244.1.1", "interface": 2} in pod["ips"]
    assert pod["interfaces"][2] == {
        "name": "eth0",
        "mac": pod["interfaces"][2]["mac"],
        "sandbox": pod["netns"],
    }

    table = ok(node.cli("pod", "ls")).splitlines()
    assert table[0].split()[:4] == ["NAMESPACE", "NAME", "STATE", "IP"]
    assert [row.split()[:4] for row in table[1:]] == [
        ["shop", "db", "ready", "10.244.1.3"],
        ["shop", "web", "ready", "10.244.1.2"],
    ]

    info = json.loads(ok(node.cli("pod", "inspect", "db", "-n", "shop")))
    assert info["netnsAlive"] is True and info["ips"] == ["10.244.1.3/24"]
    assert info["cache"]["result"]["ips"][0]["address"] == "10.244.1.3/24"
    assert os.path.basename(info["cacheFile"]) == f"podnet-test-{pod['sandboxId']}-eth0"

    assert ok(node.cli("pod", "check", "db", "-n", "shop")) == "pod shop/db: ok\n"
    assert ok(node.cli("pod", "rm", "db", "-n", "shop")) == "removed pod shop/db\n"
    assert "not found, nothing to remove" in ok(node.cli("pod", "rm", "db", "-n", "shop"))

    missing = node.cli("pod", "check", "db", "-n", "shop")
    assert (missing.returncode, missing.stderr) == (
        1,
        "podnet pod check: pod shop/db not found\n",
    )
    assert ok(node.cli("pod", "stop", "web", "-n", "shop")) == "stopped pod shop/web\n"
    assert ok(node.cli("pod", "ls", "-o", "json")) and node.allocated_ips() == set()
    ok(node.cli("pod", "rm", "web", "-n", "shop"))
    assert json.loads(ok(node.cli("pod", "ls", "-o", "json"))) == []


def test_cni_status(ref_node: Node) -> None:
    node = ref_node
    down = node.cli("cni", "status")
    assert down.returncode == 1
    assert down.stderr == f"podnet cni status: no network config found in {node.conf_dir}\n"

    node.write_conflist(node.bridge(), {"type": "loopback"})
    text = ok(node.cli("cni", "status"))
    assert "plugins bridge, loopback" in text and text.endswith("ready\n")

    # the reference plugins of this machine speak up to 1.0.0
    node.write_conflist(node.bridge(), {"type": "nope"}, version="1.1.0")
    bad = node.cli("cni", "status", "-o", "json")
    assert bad.returncode == 1
    report = json.loads(bad.stdout)
    assert report["ready"] is False
    assert 'plugin bridge does not support config version "1.1.0"' in report["error"]
    assert 'plugin nope failed (version): failed to find plugin "nope"' in report["error"]
