"""Interface selection as flanneld does it, on real interfaces of a throwaway namespace.

The node namespace has
    eth0  169.254.9.9/16 (added first) and 192.0.2.10/25, the default route's; fd00:10::10/64
    eth1  192.0.2.138/25 (a second underlay segment); fd00:11::10/64
    eth2  no IPv4 address
    eth3  192.0.2.200/32 (a second address on another interface, name matches nothing)
"""

from __future__ import annotations

import logging
import uuid
from ipaddress import (
    IPv4Address,
    IPv4Interface,
    IPv4Network,
    IPv6Address,
    IPv6Interface,
    ip_network,
)

import pytest

from podnet.agent import (
    ConfigError,
    InterfaceError,
    InterfaceOptions,
    NetworkConfig,
    NodeNetwork,
    NodeSettings,
    choose_interface,
)
from podnet.agent._daemon import choose_external_interface
from podnet.netlink import (
    Rtnl,
    add_address,
    add_route,
    create_netns,
    create_veth_pair,
    delete_netns,
    get_link,
    read_vxlan,
    run_in_netns,
    set_loopback_up,
)

pytestmark = pytest.mark.root

VXLAN = NetworkConfig.from_dict({"Network": "10.244.0.0/16", "Backend": {"Type": "vxlan"}})
HOST_GW = NetworkConfig.from_dict({"Network": "10.244.0.0/16", "Backend": {"Type": "host-gw"}})


@pytest.fixture(scope="module")
def node(tmp_path_factory):
    base = tmp_path_factory.mktemp("iface")
    path = str(base / f"pn-if{uuid.uuid4().hex[:8]}")
    peer = path + "-peer"
    bare = path + "-bare"  # no default route at all
    for ns in (path, peer, bare):
        create_netns(ns)
    try:
        with Rtnl.open(peer) as other:
            for name in ("eth0", "eth1", "eth2", "eth3"):
                create_veth_pair(other, f"p-{name}", peer=name, peer_netns=path)
                other.set_up(get_link(other, f"p-{name}").index)
        with Rtnl.open(path) as rtnl:
            set_loopback_up(rtnl)
            addresses = {
                "eth0": ["169.254.9.9/16", "192.0.2.10/25", "fd00:10::10/64"],
                "eth1": ["192.0.2.138/25", "fd00:11::10/64"],
                "eth2": [],
                "eth3": ["192.0.2.200/32"],
            }
            for name, texts in addresses.items():
                link = get_link(rtnl, name)
                for text in texts:
                    address = IPv6Interface(text) if ":" in text else IPv4Interface(text)
                    add_address(rtnl, link.index, address, nodad=True)
                rtnl.set_up(link.index)
            eth0 = get_link(rtnl, "eth0").index
            add_route(rtnl, ip_network("0.0.0.0/0"), oif=eth0, gateway=IPv4Address("192.0.2.1"))
            add_route(rtnl, ip_network("::/0"), oif=eth0, gateway=IPv6Address("fd00:10::1"))
        with Rtnl.open(bare) as rtnl:
            set_loopback_up(rtnl)
        yield path, bare
    finally:
        for ns in (path, peer, bare):
            delete_netns(ns)


def choose(netns: str, options: InterfaceOptions, **stack: bool):
    with Rtnl.open(netns) as rtnl:
        return choose_interface(rtnl, options, **stack)


def test_default_is_the_default_routes_interface_and_its_global_address(node) -> None:
    chosen = choose(node[0], InterfaceOptions())
    assert (chosen.name, chosen.address, chosen.public_ip) == (
        "eth0",
        IPv4Address("192.0.2.10"),  # global before link-local, though added after it
        IPv4Address("192.0.2.10"),
    )
    assert chosen.address_v6 is None and chosen.public_ipv6 is None


def test_without_a_default_route_flanneld_gives_up(node) -> None:
    with pytest.raises(InterfaceError) as failed:
        choose(node[1], InterfaceOptions())
    assert str(failed.value) == (
        "Failed to find any valid interface to use: "
        "failed to get default interface: unable to find default route"
    )


def test_the_first_iface_that_exists_and_has_an_address_wins(node, caplog) -> None:
    caplog.set_level(logging.INFO, "podnet.agent")
    chosen = choose(node[0], InterfaceOptions(ifaces=("eth9", "eth2", "eth1", "eth0")))
    assert (chosen.name, chosen.address) == ("eth1", IPv4Address("192.0.2.138"))
    assert (
        "Could not find valid interface matching eth9: "
        "error looking up interface eth9: no such network interface"
    ) in caplog.messages
    assert (
        "Could not find valid interface matching eth2: "
        "failed to find IPv4 address for interface eth2"
    ) in caplog.messages
    assert "Using interface with name eth1 and address 192.0.2.138" in caplog.messages


def test_iface_by_address_takes_that_address(node) -> None:
    chosen = choose(node[0], InterfaceOptions(ifaces=("192.0.2.200",)))
    assert (chosen.name, chosen.address) == ("eth3", IPv4Address("192.0.2.200"))


def test_iface_comes_before_regex_and_regex_before_can_reach(node) -> None:
    both = InterfaceOptions(ifaces=("eth0",), regexes=("eth1",), can_reach="192.0.2.140")
    assert choose(node[0], both).name == "eth0"
    assert choose(node[0], InterfaceOptions(regexes=("eth1",), can_reach="192.0.2.10")).name == (
        "eth1"
    )


def test_regex_matches_addresses_first_then_names(node) -> None:
    # "2" is in eth2's name, but eth0's address 192.0.2.10 matches first (addresses first)
    by_address = choose(node[0], InterfaceOptions(regexes=("2",)))
    assert (by_address.name, by_address.address) == ("eth0", IPv4Address("192.0.2.10"))
    by_name = choose(node[0], InterfaceOptions(regexes=(r"^eth[13]$",)))
    assert by_name.name == "eth1"
    second = choose(node[0], InterfaceOptions(regexes=(r"^10\.", r"\.13\d$")))
    assert (second.name, second.address) == ("eth1", IPv4Address("192.0.2.138"))


def test_regex_errors_say_what_there_is(node) -> None:
    with pytest.raises(InterfaceError) as failed:
        choose(node[0], InterfaceOptions(regexes=("^wlan", "(")))
    message = str(failed.value)
    assert message.startswith(
        "Failed to find interface to use that matches the interfaces and/or regexes provided"
    )
    assert "could not match pattern ^wlan to any of the available network interfaces" in message
    assert "eth1:[192.0.2.138]" in message and "eth2:[]" in message
    assert "could not compile the IP address regex '('" in message


def test_can_reach_takes_the_routes_interface_and_source(node) -> None:
    chosen = choose(node[0], InterfaceOptions(can_reach="192.0.2.140"))
    assert (chosen.name, chosen.address) == ("eth1", IPv4Address("192.0.2.138"))
    far = choose(node[0], InterfaceOptions(can_reach="203.0.113.7"))  # the default route's
    assert (far.name, far.address) == ("eth0", IPv4Address("192.0.2.10"))


def test_public_ip_alone_picks_the_interface_holding_it(node) -> None:
    chosen = choose(node[0], InterfaceOptions(public_ip="192.0.2.138"))
    assert (chosen.name, chosen.address, chosen.public_ip) == (
        "eth1",
        IPv4Address("192.0.2.138"),
        IPv4Address("192.0.2.138"),
    )
    with pytest.raises(InterfaceError) as failed:
        choose(node[0], InterfaceOptions(public_ip="203.0.113.9"))
    assert str(failed.value) == (
        "Failed to find any valid interface to use: "
        "error looking up interface 203.0.113.9: no interface with given IP found"
    )


def test_public_ip_with_an_interface_is_published_as_given(node) -> None:
    chosen = choose(node[0], InterfaceOptions(ifaces=("eth0",), public_ip="203.0.113.9"))
    assert (chosen.name, chosen.address, chosen.public_ip) == (
        "eth0",
        IPv4Address("192.0.2.10"),
        IPv4Address("203.0.113.9"),
    )


def test_dual_stack_takes_one_address_of_each_family(node) -> None:
    chosen = choose(node[0], InterfaceOptions(), ipv4=True, ipv6=True)
    assert (chosen.name, chosen.address, chosen.address_v6) == (
        "eth0",
        IPv4Address("192.0.2.10"),
        IPv6Address("fd00:10::10"),
    )
    only6 = choose(node[0], InterfaceOptions(ifaces=("eth1",)), ipv4=False, ipv6=True)
    assert (only6.address, only6.address_v6, only6.public_ipv6) == (
        None,
        IPv6Address("fd00:11::10"),
        IPv6Address("fd00:11::10"),
    )
    # ::1 is no unicast address: lo has none usable (any other link has a link-local one)
    with pytest.raises(InterfaceError, match="failed to find IPv6 address for interface lo"):
        choose(node[0], InterfaceOptions(ifaces=("lo",)), ipv4=False, ipv6=True)


def test_host_gw_refuses_a_public_ip_that_is_not_the_interfaces(node) -> None:
    options = InterfaceOptions(ifaces=("eth0",), public_ip="203.0.113.9")
    chosen = run_in_netns(node[0], lambda: choose_external_interface(options, VXLAN))
    assert chosen.public_ip == IPv4Address("203.0.113.9")
    with pytest.raises(ConfigError, match="your PublicIP differs from interface IP"):
        run_in_netns(node[0], lambda: choose_external_interface(options, HOST_GW))


def test_vxlan_sends_from_the_interface_and_publishes_the_public_ip(node, tmp_path) -> None:
    settings = NodeSettings(
        node="n1",
        subnet=IPv4Network("10.244.1.0/24"),
        underlay="eth1",
        subnet_file=str(tmp_path / "subnet.env"),
        ip_masq=False,
        netns=node[0],
        underlay_ip=IPv4Address("192.0.2.138"),
        public_ip=IPv4Address("203.0.113.9"),
    )
    with NodeNetwork.start(settings, VXLAN) as network:
        assert network.lease.annotations()["flannel.alpha.coreos.com/public-ip"] == "203.0.113.9"
        device = read_vxlan(network.rtnl, "flannel.1")
        assert device is not None and device.local == IPv4Address("192.0.2.138")
        assert device.underlay_index == get_link(network.rtnl, "eth1").index
        network.rtnl.delete_link(get_link(network.rtnl, "flannel.1").index)
