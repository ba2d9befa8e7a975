"""podnet.netlink's overlay primitives against a real kernel, in throwaway namespaces."""

from __future__ import annotations

import subprocess
import uuid
from ipaddress import IPv4Address, IPv4Interface, IPv4Network

import pytest

from podnet.netlink import (
    FdbEntry,
    GatewayRoute,
    Neighbour,
    Rtnl,
    RtnlError,
    VxlanSpec,
    add_address,
    create_netns,
    create_veth_pair,
    delete_netns,
    delete_route,
    ensure_sole_address,
    ensure_vxlan,
    fdb_delete,
    fdb_entries,
    fdb_replace,
    get_link,
    ipv4_addresses,
    lookup_route,
    neigh_delete,
    neigh_replace,
    permanent_neighbours,
    read_vxlan,
    replace_route,
    routes_with_proto,
    set_loopback_up,
)

pytestmark = pytest.mark.root

MAC_A = "02:00:00:00:00:0a"
MAC_B = "02:00:00:00:00:0b"


@pytest.fixture
def node(tmp_path):
    """A namespace with an underlay veth `eth0` 192.0.2.10/24 (its peer in a second one)."""
    path = str(tmp_path / f"pn-{uuid.uuid4().hex[:8]}")
    peer = path + "-peer"
    create_netns(path)
    create_netns(peer)
    try:
        with Rtnl.open(peer) as other:
            create_veth_pair(other, "eth0", peer="eth0", peer_netns=path)
            other.set_up(get_link(other, "eth0").index)
        with Rtnl.open(path) as rtnl:
            set_loopback_up(rtnl)
            eth = get_link(rtnl, "eth0")
            add_address(rtnl, eth.index, IPv4Interface("192.0.2.10/24"))
            rtnl.set_up(eth.index)
            yield rtnl
    finally:
        delete_netns(path)
        delete_netns(peer)


def spec(rtnl: Rtnl, **changes) -> VxlanSpec:
    base = VxlanSpec(
        name="flannel.1",
        vni=1,
        local=IPv4Address("192.0.2.10"),
        underlay_index=get_link(rtnl, "eth0").index,
        mtu=1450,
        mac=MAC_A,
    )
    return VxlanSpec(**{**base.__dict__, **changes})


def ip_details(rtnl: Rtnl, *args: str) -> str:
    return subprocess.run(
        ["nsenter", f"--net={rtnl.netns}", *args], capture_output=True, text=True, check=True
    ).stdout


def test_vxlan_device_as_flannel_makes_it(node) -> None:
    dev = ensure_vxlan(node, spec(node))
    assert (dev.kind, dev.mac, dev.mtu) == ("vxlan", MAC_A, 1450)
    shown = ip_details(node, "ip", "-d", "link", "show", "flannel.1")
    assert "vxlan id 1 local 192.0.2.10 dev eth0" in shown
    assert "dstport 8472 nolearning" in shown


def test_compatible_device_is_kept_and_fixed_in_place(node) -> None:
    first = ensure_vxlan(node, spec(node))
    again = ensure_vxlan(node, spec(node, mtu=1400, mac=MAC_B))
    assert again.index == first.index, "a compatible device must not be recreated"
    assert (again.mtu, again.mac) == (1400, MAC_B)


@pytest.mark.parametrize(
    "change",
    [{"vni": 2}, {"port": 4789}, {"local": IPv4Address("192.0.2.99")}, {"learning": True}],
)
def test_incompatible_device_is_recreated(node, change) -> None:
    first = ensure_vxlan(node, spec(node))
    again = ensure_vxlan(node, spec(node, **change))
    assert again.index != first.index
    attrs = read_vxlan(node, "flannel.1")
    assert attrs is not None
    for key, value in change.items():
        assert getattr(attrs, key) == value


def test_sole_address_replaces_an_old_lease_address_only(node) -> None:
    dev = ensure_vxlan(node, spec(node))
    cluster = IPv4Network("10.244.0.0/16")
    add_address(node, dev.index, IPv4Interface("10.244.7.0/32"))
    add_address(node, dev.index, IPv4Interface("172.16.0.1/32"))  # not the cluster's
    ensure_sole_address(node, dev.index, IPv4Interface("10.244.1.0/32"), within=cluster)
    ensure_sole_address(node, dev.index, IPv4Interface("10.244.1.0/32"), within=cluster)
    assert sorted(ipv4_addresses(node, dev.index)) == [
        IPv4Interface("10.244.1.0/32"),
        IPv4Interface("172.16.0.1/32"),
    ]


def test_neighbour_replace_dump_delete(node) -> None:
    dev = ensure_vxlan(node, spec(node))
    node.set_up(dev.index)
    entry = Neighbour(dev.index, IPv4Address("10.244.2.0"), MAC_B)
    neigh_replace(node, entry)
    neigh_replace(node, entry)  # idempotent
    assert permanent_neighbours(node, dev.index) == [entry]
    moved = Neighbour(dev.index, entry.ip, "02:00:00:00:00:0c")
    neigh_replace(node, moved)
    assert permanent_neighbours(node, dev.index) == [moved]
    neigh_delete(node, moved)
    neigh_delete(node, moved)  # already gone is fine
    assert permanent_neighbours(node, dev.index) == []


def test_fdb_replace_updates_the_remote_in_place(node) -> None:
    dev = ensure_vxlan(node, spec(node))
    entry = FdbEntry(dev.index, MAC_B, IPv4Address("192.0.2.20"))
    fdb_replace(node, entry)
    fdb_replace(node, entry)
    assert fdb_entries(node, dev.index) == [entry]
    moved = FdbEntry(dev.index, MAC_B, IPv4Address("192.0.2.21"))
    fdb_replace(node, moved)
    assert fdb_entries(node, dev.index) == [moved]
    assert f"{MAC_B} dst 192.0.2.21 self permanent" in ip_details(
        node, "bridge", "fdb", "show", "dev", "flannel.1"
    )
    fdb_delete(node, moved)
    fdb_delete(node, moved)
    assert fdb_entries(node, dev.index) == []


def test_routes_tagged_with_a_proto_are_listed_and_deleted(node) -> None:
    dev = ensure_vxlan(node, spec(node))
    node.set_up(dev.index)
    eth = get_link(node, "eth0").index
    overlay = GatewayRoute(IPv4Network("10.244.2.0/24"), IPv4Address("10.244.2.0"), dev.index, True)
    direct = GatewayRoute(IPv4Network("10.244.3.0/24"), IPv4Address("192.0.2.30"), eth)
    other = GatewayRoute(IPv4Network("10.244.4.0/24"), IPv4Address("192.0.2.40"), eth)
    replace_route(node, overlay, proto=80)
    replace_route(node, direct, proto=80)
    replace_route(node, other, proto=4)  # someone else's (static)
    assert routes_with_proto(node, 80) == [overlay, direct]
    assert "10.244.2.0/24 via 10.244.2.0 dev flannel.1 proto 80 onlink" in ip_details(
        node, "ip", "route"
    )
    # replace moves the route for a destination in place
    moved = GatewayRoute(overlay.dst, IPv4Address("192.0.2.20"), eth)
    replace_route(node, moved, proto=80)
    assert routes_with_proto(node, 80) == [moved, direct]
    delete_route(node, moved, proto=80)
    delete_route(node, moved, proto=80)
    assert routes_with_proto(node, 80) == [direct]
    assert routes_with_proto(node, 4) == [other]


def test_lookup_route_tells_direct_from_gatewayed(node) -> None:
    eth = get_link(node, "eth0").index
    assert lookup_route(node, IPv4Address("192.0.2.77")).gateway is None
    replace_route(
        node, GatewayRoute(IPv4Network("198.51.100.0/24"), IPv4Address("192.0.2.1"), eth), proto=80
    )
    found = lookup_route(node, IPv4Address("198.51.100.5"))
    assert (found.ifindex, found.gateway) == (eth, IPv4Address("192.0.2.1"))


def test_errors_carry_the_kernel_errno(node) -> None:
    with pytest.raises(RtnlError) as info:
        get_link(node, "nope0")
    assert "nope0" in str(info.value)
    with pytest.raises(RtnlError) as info:
        add_address(node, 9999, IPv4Interface("10.0.0.1/24"))
    assert info.value.errno is not None
