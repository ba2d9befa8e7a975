"""Links, addresses and routes against a real kernel, inside throwaway namespaces."""

from __future__ import annotations

import errno
import ipaddress
import json
import subprocess

import pytest

from podnet.netlink import (
    LinkNotFound,
    NetlinkError,
    add_address,
    add_route,
    create_bridge,
    create_veth,
    delete_address,
    delete_link,
    find_link,
    get_link,
    get_link_by_index,
    list_addresses,
    list_links,
    list_routes,
    open_rtnl,
    read_sysctl,
    set_bridge_port,
    set_link,
    set_promisc,
    set_sysctls,
)

pytestmark = pytest.mark.root


def bridge_details(netns: str, dev: str) -> str:
    return subprocess.run(
        ["nsenter", f"--net={netns}", "bridge", "-d", "link", "show", "dev", dev],
        capture_output=True,
        text=True,
        check=True,
    ).stdout


def link_queues(netns: str, dev: str) -> tuple[int, int]:
    """(TX, RX) queues of `dev` as iproute2 reports them."""
    out = subprocess.run(
        ["nsenter", f"--net={netns}", "ip", "-d", "-j", "link", "show", "dev", dev],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    link = json.loads(out)[0]
    return link["num_tx_queues"], link["num_rx_queues"]


def test_veth_ends_have_one_queue_each(netns_pair: tuple[str, str]) -> None:
    # The kernel's default is one per possible CPU, cut to one in use under the rtnl
    # lock (see create_veth); on a 1-CPU machine this test could not tell the two apart.
    node_path, pod_path = netns_pair
    with open_rtnl(pod_path) as pod:
        create_veth(pod, "eth0", peer_name="veth0", peer_netns=node_path, up=True)
    assert link_queues(pod_path, "eth0") == (1, 1)
    assert link_queues(node_path, "veth0") == (1, 1)


def test_bridge_and_veth_across_namespaces(netns_pair: tuple[str, str]) -> None:
    node_path, pod_path = netns_pair
    with open_rtnl(node_path) as node, open_rtnl(pod_path) as pod:
        create_bridge(node, "cni0", mtu=1400)
        with pytest.raises(NetlinkError) as info:
            create_bridge(node, "cni0")
        assert info.value.errno == errno.EEXIST
        bridge = get_link(node, "cni0")
        assert (bridge.kind, bridge.mtu, bridge.admin_up) == ("bridge", 1400, False)

        create_veth(
            pod, "eth0", peer_name="veth0", peer_netns=node_path, mtu=1400, mac="0a:58:0a:f4:01:05"
        )
        container, host = get_link(pod, "eth0"), get_link(node, "veth0")
        assert find_link(node, "eth0") is None, "the pod end was created in the pod"
        assert (container.mac, container.mtu, host.mtu) == ("0a:58:0a:f4:01:05", 1400, 1400)
        assert container.peer_index == host.index and host.peer_index == container.index
        assert container.peer_in_other_netns and host.peer_in_other_netns
        with pytest.raises(NetlinkError) as info:
            create_veth(pod, "eth0", peer_name="veth1", peer_netns=node_path)
        assert info.value.errno == errno.EEXIST

        set_link(node, host.index, master=bridge.index, up=True)
        set_link(node, bridge.index, up=True, mtu=1300)
        set_bridge_port(node, host.index, hairpin=True, isolated=True)
        set_promisc(node, bridge.index, True)
        assert [link.name for link in list_links(node, master=bridge.index)] == ["veth0"]
        assert get_link(node, "cni0").promisc and get_link(node, "cni0").mtu == 1300
        assert get_link_by_index(node, host.index).master == bridge.index
        details = bridge_details(node_path, "veth0")
        assert "hairpin on" in details and "isolated on" in details

        delete_link(pod, container.index)
        assert find_link(node, "veth0") is None, "deleting one end deletes the pair"
        with pytest.raises(LinkNotFound):
            get_link(pod, "eth0")
        with pytest.raises(LinkNotFound):
            delete_link(pod, container.index)


def test_addresses_and_routes(netns_pair: tuple[str, str]) -> None:
    node_path, pod_path = netns_pair
    with open_rtnl(pod_path) as pod:
        create_veth(pod, "eth0", peer_name="veth0", peer_netns=node_path)
        eth0 = get_link(pod, "eth0")
        set_link(pod, eth0.index, up=True)
        set_sysctls({"net/ipv6/conf/eth0/disable_ipv6": "0"}, netns=pod_path, best_effort=True)
        v4 = ipaddress.ip_interface("10.244.1.5/24")
        v6 = ipaddress.ip_interface("fd00:1::5/64")
        add_address(pod, eth0.index, v4)
        add_address(pod, eth0.index, v6, nodad=True)
        with pytest.raises(NetlinkError) as info:
            add_address(pod, eth0.index, v4)
        assert info.value.errno == errno.EEXIST
        found = {a.address: a for a in list_addresses(pod, eth0.index)}
        assert v4 in found and v6 in found and not found[v6].tentative
        assert [a.address for a in list_addresses(pod, eth0.index, version=4)] == [v4]

        add_route(
            pod,
            ipaddress.ip_network("0.0.0.0/0"),
            oif=eth0.index,
            gateway=ipaddress.ip_address("10.244.1.1"),
        )
        add_route(pod, ipaddress.ip_network("192.0.2.0/24"), oif=eth0.index, priority=50)
        routes = {(str(r.dst), str(r.gateway), r.priority) for r in list_routes(pod, version=4)}
        assert ("0.0.0.0/0", "10.244.1.1", 0) in routes
        assert ("192.0.2.0/24", "None", 50) in routes
        assert ("10.244.1.0/24", "None", 0) in routes
        with pytest.raises(NetlinkError) as info:
            add_route(
                pod,
                ipaddress.ip_network("198.51.100.0/24"),
                oif=eth0.index,
                gateway=ipaddress.ip_address("10.9.9.9"),
            )
        assert info.value.errno == errno.ENETUNREACH

        assert delete_address(pod, eth0.index, v4) is True
        assert delete_address(pod, eth0.index, v4) is False
        assert all(r.dst.prefixlen != 0 for r in list_routes(pod, version=4))


def test_sysctls_follow_the_namespace(netns_pair: tuple[str, str]) -> None:
    node_path, _ = netns_pair
    set_sysctls({"net/ipv4/ip_forward": "1"}, netns=node_path)
    with open("/proc/sys/net/ipv4/ip_forward") as handle:
        own = handle.read().strip()
    assert own == "0", "the test's own namespace must stay untouched"
    # read first (as the reference sets forwarding): a value already there is kept
    assert set_sysctls({"net/ipv4/ip_forward": "1"}, netns=node_path, read_first=True) == []
    set_sysctls({"net/ipv4/ip_forward": "0"}, netns=node_path)
    set_sysctls({"net/ipv4/ip_forward": "1"}, netns=node_path, read_first=True)
    assert read_sysctl(node_path, "net/ipv4/ip_forward") == "1"
    assert set_sysctls(
        {"net/ipv4/conf/nope/arp_notify": "1"}, netns=node_path, best_effort=True
    ) == ["net/ipv4/conf/nope/arp_notify"]
    with pytest.raises(OSError):
        set_sysctls({"net/ipv4/conf/nope/arp_notify": "1"}, netns=node_path)
