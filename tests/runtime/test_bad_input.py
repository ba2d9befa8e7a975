"""Bad input to `podnet pod run`: one clear line on stderr, exit 1, and nothing left
half-done: no pod netns, no cache entry, no sandbox record, no IP allocated."""

from __future__ import annotations

import ipaddress
import json
import os
import subprocess
import time

import pytest

from tests.runtime.conftest import Node
from tests.runtime.script_plugins import read_log, write_plugin

pytestmark = pytest.mark.root


def assert_nothing_left(node: Node) -> None:
    assert node.pod_netns() == []
    assert node.cache_files() == []
    assert node.records() == []
    assert node.allocated_ips() == set()


def one_error_line(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 1, done.stdout
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    return lines[0]


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ("{", "config list is not valid JSON"),
        ('{"cniVersion": "1.0.0", "name": "x", "plugins": []}', "no plugins in list"),
        ('{"cniVersion": "7.0.0", "name": "x", "plugins": [{"type": "bridge"}]}', "incompatible"),
        (None, "cannot read it: No such file or directory"),  # a dangling symlink
    ],
    ids=["json", "no-plugins", "version", "dangling"],
)
def test_an_unusable_default_config(ref_node: Node, content: str | None, reason: str) -> None:
    node = ref_node
    node.write_conflist(node.bridge(), filename="10-good.conflist")
    path = os.path.join(node.conf_dir, "05-bad.conflist")
    if content is None:
        os.symlink(os.path.join(node.root, "nowhere"), path)
    else:
        with open(path, "w") as handle:
            handle.write(content)
    line = one_error_line(node.cli("pod", "run", "web"))
    assert line.startswith(f"podnet pod run: invalid CNI config {path}: ")
    assert reason in line
    assert_nothing_left(node)


def test_no_config_at_all(ref_node: Node) -> None:
    line = one_error_line(ref_node.cli("pod", "run", "web"))
    assert line == f"podnet pod run: no network config found in {ref_node.conf_dir}"
    assert_nothing_left(ref_node)


def _bridge_exists(node: Node) -> bool:
    done = subprocess.run(
        ["nsenter", f"--net={node.netns}", "ip", "link", "show", "cni0"],
        capture_output=True,
        check=False,
    )
    return done.returncode == 0


@pytest.mark.parametrize(
    ("plugin", "actions", "message"),
    [
        ("missing", None, 'plugin missing failed (add): failed to find plugin "missing" in path'),
        (
            "garbage",
            {"ADD": "garbage"},
            "plugin garbage failed (add): failed to decode plugin result",
        ),
        ("broken", {"ADD": "stderr-fail"}, "plugin broken failed (add): netplugin failed: "),
        ("hang", {"ADD": "hang"}, "plugin hang failed (add): plugin hang timed out after 1s"),
    ],
    ids=["missing", "garbage", "stderr", "hang"],
)
def test_a_bad_second_plugin(ref_node: Node, plugin: str, actions, message: str) -> None:
    node = ref_node
    if actions is not None:
        write_plugin(node.scripts_dir, plugin, **actions)
    node.write_conflist(node.bridge(), {"type": plugin})
    started = time.monotonic()
    line = one_error_line(node.cli("pod", "run", "web", "--timeout", "1"))
    assert time.monotonic() - started < 10
    assert line.startswith(f"podnet pod run: {message}"), line
    assert_nothing_left(node)
    # a missing binary is found before anything runs: bridge never created cni0
    assert _bridge_exists(node) is (actions is not None)


def test_two_configs_the_lexically_first_wins_with_a_warning(ref_node: Node) -> None:
    node = ref_node
    node.write_conflist(node.bridge(), name="cbr0", filename="10-flannel.conflist")
    node.write_conflist(
        node.bridge(subnet="10.244.88.0/24", bridge="cni-c"),
        name="containerd-net",
        filename="10-containerd-net.conflist",
    )
    with open(os.path.join(node.conf_dir, "99-broken.conf"), "w") as handle:
        handle.write('{"name": "x"}')
    done = node.cli("pod", "run", "web", "-o", "json")
    assert done.returncode == 0, done.stderr
    pod = json.loads(done.stdout)
    assert pod["network"] == "containerd-net"
    assert ipaddress.ip_address(pod["ip"]) in ipaddress.ip_network("10.244.88.0/24")
    warnings = done.stderr.strip().splitlines()
    assert len(warnings) == 2, done.stderr
    assert "99-broken.conf: config has no 'type'" in warnings[0]
    assert warnings[1].startswith("podnet: warning: 3 network configs in ")
    assert (
        'using 10-containerd-net.conflist (network "containerd-net") (lexically first)'
        in (warnings[1])
    )
    assert "ignored: 10-flannel.conflist, 99-broken.conf" in warnings[1]


def test_a_result_without_a_pod_ip_is_torn_down(ref_node: Node) -> None:
    node = ref_node
    log = os.path.join(node.root, "calls.jsonl")
    write_plugin(node.scripts_dir, "noip", log=log)
    node.write_conflist({"type": "noip"})
    line = one_error_line(node.cli("pod", "run", "web"))
    assert line == "podnet pod run: the CNI result has no IP address on eth0"
    assert [c["command"] for c in read_log(log)] == ["ADD", "DEL"]
    assert_nothing_left(node)
