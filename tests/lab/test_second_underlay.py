"""Multi-NIC lab nodes: the agents pick the second underlay by regex, as flanneld's
--iface-regex does, and pods on different nodes talk over it."""

from __future__ import annotations

import json
import subprocess

import pytest

from podnet.lab import (
    SECOND_UNDERLAY_NETWORK,
    Endpoint,
    Lab,
    ping,
    second_underlay_address,
)
from podnet.netlink import Rtnl, fdb_entries, get_link, read_vxlan

pytestmark = pytest.mark.root


def tx_packets(netns: str, ifname: str) -> int:
    done = subprocess.run(
        ["nsenter", f"--net={netns}", "ip", "-s", "-j", "link", "show", ifname],
        capture_output=True,
        text=True,
        check=True,
    )
    return int(json.loads(done.stdout)[0]["stats64"]["tx"]["packets"])


def test_pods_talk_over_the_interface_the_regex_picks(lab: Lab) -> None:
    # the regex matches the second segment's addresses (192.0.2.138, .139), not eth0's
    lab.up(2, second_underlay=True, interface_args=[r"--iface-regex=^192\.0\.2\.1[3-9]\d$"])
    for node in lab.nodes():
        index = lab.node(node.name).index
        public_ip = node.annotations["flannel.alpha.coreos.com/public-ip"]
        assert public_ip == str(second_underlay_address(index).ip)
    n1, n2 = lab.node("n1"), lab.node("n2")
    with Rtnl.open(n1.netns) as rtnl:
        device = read_vxlan(rtnl, "flannel.1")
        assert device is not None and device.local == second_underlay_address(n1.index).ip
        assert device.underlay_index == get_link(rtnl, "eth1").index
        destinations = {entry.dst for entry in fdb_entries(rtnl, get_link(rtnl, "flannel.1").index)}
    assert destinations == {second_underlay_address(n2.index).ip}
    assert all(d in SECOND_UNDERLAY_NETWORK for d in destinations)
    a = lab.pod_run("a", "n1").sandbox
    b = lab.pod_run("b", "n2").sandbox
    before = tx_packets(n1.netns, "eth1")
    assert ping(Endpoint("a", "n1", a.netns, a.ip), Endpoint("b", "n2", b.netns, b.ip))
    # the echo request left n1 encapsulated on eth1 (nothing else sends there)
    assert tx_packets(n1.netns, "eth1") > before
