"""bridge ADD in the agent: IPAM runs on the host's helper thread while the worker creates
the veth pair, and whichever fails, what the other made is undone."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from podnet.cni import Host, HostState, dispatch
from podnet.netlink import find_link, get_link_by_index, open_rtnl, run_in_netns
from podnet.plugins import load_plugin
from podnet.plugins._delegate import delegate
from podnet.plugins.main.bridge import _add
from tests.plugins.main._support import bridge_conf, in_netns, node_veths, reservations

pytestmark = pytest.mark.root

BRIDGE = load_plugin("bridge")


WORKERS: list[int] = []  # the thread each add_as_the_agent ran on, last one last


def add_as_the_agent(
    cni_bin: Path, node: str, pod: str, conf: dict[str, Any], container_id: str = "c1"
) -> tuple[int, dict[str, Any]]:
    """One ADD as an agent worker runs it: on a thread in the node, with a host that
    defers and has a helper thread."""
    environ = {
        "CNI_COMMAND": "ADD",
        "CNI_CONTAINERID": container_id,
        "CNI_NETNS": pod,
        "CNI_IFNAME": "eth0",
        "CNI_PATH": str(cni_bin / "bin"),  # podnet's host-local: delegated in-process
        "PATH": os.environ.get("PATH", ""),
    }

    def run() -> tuple[int, bytes]:
        WORKERS.append(threading.get_ident())
        with Host(HostState(), defers=True, helper=True) as host:
            return dispatch(BRIDGE, environ, json.dumps(conf).encode(), host)

    code, out = run_in_netns(node, run)
    return code, json.loads(out)


@pytest.fixture
def ipam_threads(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int]]:
    """(command, thread) of every delegation bridge's ADD makes."""
    seen: list[tuple[str, int]] = []
    real = delegate

    def recording(command: str, *args: Any) -> Any:
        seen.append((command, threading.get_ident()))
        return real(command, *args)

    monkeypatch.setattr(_add, "delegate", recording)
    return seen


def test_ipam_runs_beside_the_veth_and_the_pod_is_whole(
    cni_bin: Path,
    node_netns: str,
    pod_netns: Callable[[], str],
    tmp_path: Path,
    ipam_threads: list[tuple[str, int]],
) -> None:
    pod = pod_netns()
    code, result = add_as_the_agent(cni_bin, node_netns, pod, bridge_conf("1.0.0", tmp_path))
    assert code == 0, result
    assert [command for command, _ in ipam_threads] == ["ADD"]
    assert ipam_threads[0][1] != WORKERS[-1]  # the helper's, not the worker's
    assert result["ips"][0]["address"] == "10.244.1.2/24"
    assert reservations(tmp_path) == ["10.244.1.2"]
    with open_rtnl(pod) as nl:
        eth0 = find_link(nl, "eth0")
    assert eth0 is not None and eth0.oper_state == "UP"
    with open_rtnl(node_netns) as nl:
        node_end = get_link_by_index(nl, eth0.peer_index)
        bridge = find_link(nl, "cni0")
    assert bridge is not None and node_end.master == bridge.index  # a port, after the gateway
    assert result["interfaces"][1] == {"name": node_end.name, "mac": node_end.mac}


def test_ipam_failing_beside_the_veth_leaves_no_veth(
    cni_bin: Path, node_netns: str, pod_netns: Callable[[], str], tmp_path: Path
) -> None:
    one_address = {
        "ranges": [
            [{"subnet": "10.244.1.0/24", "rangeStart": "10.244.1.10", "rangeEnd": "10.244.1.10"}]
        ]
    }
    conf = bridge_conf("1.0.0", tmp_path, ipam=one_address)
    first, out = add_as_the_agent(cni_bin, node_netns, pod_netns(), conf, "first")
    assert first == 0, out
    pod = pod_netns()
    code, error = add_as_the_agent(cni_bin, node_netns, pod, conf, "second")
    assert code == 1
    assert "no IP addresses available" in error["msg"]
    assert len(node_veths(node_netns)) == 1  # the first pod's
    with open_rtnl(pod) as nl:
        assert find_link(nl, "eth0") is None


def test_veth_failing_beside_ipam_releases_the_address(
    cni_bin: Path,
    node_netns: str,
    pod_netns: Callable[[], str],
    tmp_path: Path,
    ipam_threads: list[tuple[str, int]],
) -> None:
    pod = pod_netns()
    in_netns(pod, "ip", "link", "add", "eth0", "type", "bridge")
    code, error = add_as_the_agent(cni_bin, node_netns, pod, bridge_conf("1.0.0", tmp_path))
    assert code == 1
    assert 'container veth name "eth0" already exists' in error["msg"]
    assert [command for command, _ in ipam_threads] == ["ADD", "DEL"]
    assert reservations(tmp_path) == []
    assert node_veths(node_netns) == []


def test_a_failure_after_both_undoes_both(
    cni_bin: Path, node_netns: str, pod_netns: Callable[[], str], tmp_path: Path
) -> None:
    unreachable = {"routes": [{"dst": "192.0.2.0/24", "gw": "10.9.9.9"}]}
    pod = pod_netns()
    conf = bridge_conf("1.0.0", tmp_path, ipam=unreachable)
    code, error = add_as_the_agent(cni_bin, node_netns, pod, conf)
    assert code == 1
    assert "failed to add route" in error["msg"]
    assert reservations(tmp_path) == []
    assert node_veths(node_netns) == []
