"""The lab underlay: node namespaces on a switch namespace, and a teardown that needs no state."""

from __future__ import annotations

import os
import subprocess
import uuid

import pytest

from podnet.lab import (
    TopologyError,
    add_node,
    build,
    lab_namespaces,
    node_address,
    remove_node,
    second_underlay_address,
    teardown,
)
from podnet.netlink import (
    Rtnl,
    create_netns,
    find_link,
    get_link,
    is_netns,
    list_addresses,
    read_sysctl,
)

pytestmark = pytest.mark.root


def ping(netns: str, ip: object) -> bool:
    done = subprocess.run(
        ["nsenter", f"--net={netns}", "ping", "-c", "1", "-W", "2", "-q", str(ip)],
        capture_output=True,
    )
    return done.returncode == 0


@pytest.fixture
def lab(tmp_path):
    name = "t" + uuid.uuid4().hex[:10]
    yield name, str(tmp_path)
    teardown(name, netns_dir=str(tmp_path))


def test_nodes_reach_each_other_over_the_switch(lab) -> None:
    name, netns_dir = lab
    underlay, nodes = build(name, ["n1", "n2", "n3"], netns_dir=netns_dir)
    assert [str(n.address) for n in nodes] == ["192.0.2.10/25", "192.0.2.11/25", "192.0.2.12/25"]
    assert os.path.basename(underlay.netns) == f"pn-{name}-ul"
    for node in nodes:
        assert read_sysctl(node.netns, "net.ipv4.ip_forward") == "1"
        with Rtnl.open(node.netns) as rtnl:
            assert get_link(rtnl, "eth0").admin_up
    assert ping(nodes[0].netns, nodes[2].ip)
    assert ping(nodes[2].netns, nodes[1].ip)


def test_node_joins_and_leaves(lab) -> None:
    name, netns_dir = lab
    underlay, nodes = build(name, ["n1"], netns_dir=netns_dir)
    late = add_node(underlay, "n4", 3)
    assert ping(nodes[0].netns, late.ip)
    remove_node(underlay, late)
    assert not os.path.exists(late.netns)
    with Rtnl.open(underlay.netns) as switch:
        assert find_link(switch, "v-n4") is None, "the switch port goes with the node"


def test_teardown_finds_everything_by_name_and_is_safe_twice(lab) -> None:
    name, netns_dir = lab
    build(name, ["n1", "n2"], netns_dir=netns_dir)
    # a "pod" the lab made and then forgot about (crash): found by its name alone
    stray = os.path.join(netns_dir, f"pn-{name}-n1-pod")
    create_netns(stray)
    other = os.path.join(netns_dir, f"pn-{name}x-ul")  # another lab's: must survive
    create_netns(other)
    try:
        removed = teardown(name, netns_dir=netns_dir)
        assert len(removed) == 4
        assert lab_namespaces(name, netns_dir=netns_dir) == []
        assert teardown(name, netns_dir=netns_dir) == []
        assert is_netns(other)
    finally:
        teardown(name + "x", netns_dir=netns_dir)


def test_teardown_after_a_crash_removes_unmounted_leftovers(lab) -> None:
    name, netns_dir = lab
    leftover = os.path.join(netns_dir, f"pn-{name}-n9")
    open(leftover, "w").close()  # a crash between creating the file and mounting on it
    assert teardown(name, netns_dir=netns_dir) == [leftover]
    assert not os.path.exists(leftover)


@pytest.mark.parametrize("bad", ["", "Lab", "a-b", "x" * 17])
def test_lab_names_cannot_overlap_another_labs_prefix(bad) -> None:
    with pytest.raises(TopologyError):
        teardown(bad)


def test_failed_build_leaves_nothing(lab) -> None:
    name, netns_dir = lab
    with pytest.raises(TopologyError):
        build(name, ["n1", "bad-name"], netns_dir=netns_dir)
    assert lab_namespaces(name, netns_dir=netns_dir) == []


def test_node_addresses_stay_in_the_underlay_range() -> None:
    assert str(node_address(0)) == "192.0.2.10/25"
    assert str(node_address(116)) == "192.0.2.126/25"
    assert str(second_underlay_address(116)) == "192.0.2.254/25"
    with pytest.raises(TopologyError):
        node_address(117)  # would be the broadcast address


def test_a_second_underlay_is_a_second_segment(lab) -> None:
    name, netns_dir = lab
    underlay, nodes = build(name, ["n1", "n2"], netns_dir=netns_dir, second_underlay=True)
    late = add_node(underlay, "n3", 2)
    for node in [*nodes, late]:
        with Rtnl.open(node.netns) as rtnl:
            eth1 = get_link(rtnl, "eth1")
            assert eth1.admin_up
            held = [str(a.address) for a in list_addresses(rtnl, eth1.index, version=4)]
            assert held == [str(second_underlay_address(node.index))]
    assert ping(nodes[0].netns, second_underlay_address(2).ip)
    assert ping(late.netns, second_underlay_address(1).ip)
    remove_node(underlay, late)
    with Rtnl.open(underlay.netns) as switch:
        assert find_link(switch, "w-n3") is None, "both switch ports go with the node"
