"""The bridge plugin end to end: its installed executable run inside a node namespace,
the reference host-local as IPAM, real pods (namespaces) pinging each other."""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from podnet.netlink import delete_netns, get_link, list_addresses, open_rtnl
from tests.plugins.main._support import (
    Cni,
    bridge_conf,
    bridge_state,
    default_gateway,
    in_netns,
    masq_elements,
    node_veths,
    node_veths_once_settled,
    ping,
    pod_address,
    reservations,
    with_prev,
)

pytestmark = pytest.mark.root

GATEWAY = "10.244.1.1"


def add_pods(
    cni: Cni, conf: dict[str, Any], pods: list[str], *, workers: int = 4
) -> list[dict[str, Any]]:
    """ADD every pod, several at once (the runtime starts pods in parallel too)."""

    def one(i: int) -> dict[str, Any]:
        return cni.add(conf, netns=pods[i], container_id=f"pod{i}")

    with ThreadPoolExecutor(workers) as pool:
        return list(pool.map(one, range(len(pods))))


def del_pods(
    cni: Cni, conf: dict[str, Any], pods: list[str], results: list[dict[str, Any]]
) -> None:
    prev = conf["cniVersion"] not in ("0.3.0", "0.3.1")  # libcni sends prevResult from 0.4.0

    def one(i: int) -> None:
        outcome = cni.run(
            "DEL",
            with_prev(conf, results[i] if prev else None),
            netns=pods[i],
            container_id=f"pod{i}",
        )
        assert outcome.ok, outcome.out

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(one, range(len(pods))))


def test_twenty_pods_get_distinct_ips_and_reach_each_other(
    cni: Cni, pod_netns: Callable[[], str]
) -> None:
    conf = bridge_conf("1.0.0", cni.data_dir, ipMasq=True)
    pods = [pod_netns() for _ in range(20)]
    results = add_pods(cni, conf, pods)

    addresses = [pod_address(r) for r in results]
    assert len(set(addresses)) == 20
    assert all(ipaddress.ip_address(a) in ipaddress.ip_network("10.244.1.0/24") for a in addresses)
    assert bridge_state(cni.node) == (["10.244.1.1/24"], 1450)
    assert all(default_gateway(pod) == GATEWAY for pod in pods)
    for i, pod in enumerate(pods):
        assert ping(pod, GATEWAY), f"pod {i} cannot reach the gateway"
        assert ping(pod, addresses[(i + 1) % 20]), f"pod {i} cannot reach pod {i + 1}"
    assert sorted(masq_elements(cni.node)) == sorted(addresses)
    assert set(masq_elements(cni.node).values()) == {f"pod{i}/eth0" for i in range(20)}
    assert len(node_veths(cni.node)) == 20
    assert in_netns(cni.node, "cat", "/proc/sys/net/ipv4/ip_forward").stdout.strip() == "1"

    del_pods(cni, conf, pods, results)
    assert node_veths(cni.node) == []
    assert reservations(cni.data_dir) == []
    assert masq_elements(cni.node) == {}
    # DEL again: nothing left to do, still success
    again = cni.run("DEL", with_prev(conf, results[0]), netns=pods[0], container_id="pod0")
    assert again.ok, again.out


@pytest.mark.parametrize("version", ["0.3.1", "0.4.0", "1.0.0", "1.1.0"])
def test_spec_versions(cni: Cni, pod_netns: Callable[[], str], version: str) -> None:
    conf = bridge_conf(version, cni.data_dir, ipMasq=True)
    pods = [pod_netns() for _ in range(3)]
    results = add_pods(cni, conf, pods, workers=3)
    for result in results:
        assert result["cniVersion"] == version
        assert [i.get("sandbox") for i in result["interfaces"]] == [
            None,
            None,
            result["interfaces"][2]["sandbox"],
        ]
        assert result["ips"][0]["interface"] == 2
        assert ("version" in result["ips"][0]) == (version in ("0.3.1", "0.4.0"))
    addresses = [pod_address(r) for r in results]
    assert len(set(addresses)) == 3
    assert ping(pods[0], addresses[1]) and ping(pods[2], GATEWAY)
    if version != "0.3.1":
        for i, pod in enumerate(pods):
            check = cni.run("CHECK", with_prev(conf, results[i]), netns=pod, container_id=f"pod{i}")
            assert check.ok, check.out
    if version == "1.1.0":
        assert cni.run("STATUS", conf).ok
    del_pods(cni, conf, pods, results)
    assert node_veths(cni.node) == []
    assert reservations(cni.data_dir) == []
    assert masq_elements(cni.node) == {}


def test_stale_gateway_replaced_when_no_pod_uses_it(cni: Cni, pod_netns: Callable[[], str]) -> None:
    old = bridge_conf("1.0.0", cni.data_dir, subnet="10.244.0.0/24")
    pod = pod_netns()
    result = cni.add(old, netns=pod)
    assert bridge_state(cni.node)[0] == ["10.244.0.1/24"]
    assert cni.run("DEL", with_prev(old, result), netns=pod).ok

    # the node's podCIDR changed: the reference fails here until cni0 is deleted by hand
    new = bridge_conf("1.0.0", cni.data_dir)
    result = cni.add(new, netns=pod_netns())
    assert bridge_state(cni.node)[0] == ["10.244.1.1/24"]
    assert result["ips"][0]["gateway"] == GATEWAY


def test_stale_gateway_reported_while_pods_hold_it(cni: Cni, pod_netns: Callable[[], str]) -> None:
    old = bridge_conf("1.0.0", cni.data_dir, subnet="10.244.0.0/24")
    old_pod = pod_netns()
    old_result = cni.add(old, netns=old_pod, container_id="old")
    old_veth = old_result["interfaces"][1]["name"]

    new = bridge_conf("1.0.0", cni.data_dir)
    new_pod = pod_netns()
    outcome = cni.run("ADD", new, netns=new_pod, container_id="new")
    assert not outcome.ok
    assert "already has an IP address different from 10.244.1.1/24" in outcome.error
    assert old_veth in outcome.error and "10.244.0.1/24" in outcome.error
    # the failed ADD left nothing behind, and the old pod still works
    assert node_veths(cni.node) == [old_veth]
    assert reservations(cni.data_dir) == [pod_address(old_result)]
    assert ping(old_pod, "10.244.0.1")
    with open_rtnl(new_pod) as nl:
        assert [link for link in list_addresses(nl) if not link.address.ip.is_loopback] == []

    assert cni.run("DEL", with_prev(old, old_result), netns=old_pod, container_id="old").ok
    result = cni.add(new, netns=new_pod, container_id="new")
    assert ping(new_pod, GATEWAY) and result["ips"][0]["gateway"] == GATEWAY


def test_mtu_change_is_applied_to_the_bridge(cni: Cni, pod_netns: Callable[[], str]) -> None:
    cni.add(bridge_conf("1.0.0", cni.data_dir, mtu=1450), netns=pod_netns(), container_id="a")
    assert bridge_state(cni.node)[1] == 1450
    pod = pod_netns()
    cni.add(bridge_conf("1.0.0", cni.data_dir, mtu=1400), netns=pod, container_id="b")
    assert bridge_state(cni.node)[1] == 1400
    with open_rtnl(pod) as nl:
        assert get_link(nl, "eth0").mtu == 1400
    assert ping(pod, GATEWAY)


@pytest.mark.parametrize(
    ("send_prev_result", "leftover_file"), [(True, False), (False, False), (True, True)]
)
def test_del_after_pod_netns_deleted_frees_everything(
    cni: Cni, pod_netns: Callable[[], str], send_prev_result: bool, leftover_file: bool
) -> None:
    conf = bridge_conf("1.0.0", cni.data_dir, ipMasq=True)
    pod = pod_netns()
    result = cni.add(conf, netns=pod)
    assert masq_elements(cni.node) == {pod_address(result): "c1/eth0"}
    delete_netns(pod)
    if leftover_file:
        # the runtime unmounted the namespace but left its file: not a namespace any more
        open(pod, "w").close()

    outcome = cni.run("DEL", with_prev(conf, result if send_prev_result else None), netns=pod)
    assert outcome.ok, outcome.out
    assert reservations(cni.data_dir) == []
    assert masq_elements(cni.node) == {}
    assert node_veths_once_settled(cni.node) == []


def test_ipam_failure_leaves_no_veth(cni: Cni, pod_netns: Callable[[], str]) -> None:
    one_address = {
        "ranges": [
            [{"subnet": "10.244.1.0/24", "rangeStart": "10.244.1.10", "rangeEnd": "10.244.1.10"}]
        ]
    }
    conf = bridge_conf("1.0.0", cni.data_dir, ipam=one_address, ipMasq=True)
    first = cni.add(conf, netns=pod_netns(), container_id="first")
    pod = pod_netns()
    outcome = cni.run("ADD", conf, netns=pod, container_id="second")
    assert not outcome.ok
    assert "no IP addresses available" in outcome.error
    assert node_veths(cni.node) == [first["interfaces"][1]["name"]]
    assert list(masq_elements(cni.node)) == ["10.244.1.10"]
    with open_rtnl(pod) as nl:
        assert get_link(nl, "lo") and not [a for a in list_addresses(nl) if a.index != 1]


def test_failure_after_ipam_undoes_ip_and_veth(cni: Cni, pod_netns: Callable[[], str]) -> None:
    # host-local hands out a route via a gateway the pod cannot reach: adding it fails
    # after the address was reserved and the veth created
    unreachable = {"routes": [{"dst": "192.0.2.0/24", "gw": "10.9.9.9"}]}
    conf = bridge_conf("1.0.0", cni.data_dir, ipam=unreachable)
    pod = pod_netns()
    outcome = cni.run("ADD", conf, netns=pod)
    assert not outcome.ok
    assert "failed to add route" in outcome.error
    assert node_veths(cni.node) == []
    assert reservations(cni.data_dir) == []
    with open_rtnl(pod) as nl:
        assert [link.index for link in list_addresses(nl)] in ([], [1, 1])


def test_existing_interface_name_is_refused_and_undone(
    cni: Cni, pod_netns: Callable[[], str]
) -> None:
    conf = bridge_conf("1.0.0", cni.data_dir)
    pod = pod_netns()
    in_netns(pod, "ip", "link", "add", "eth0", "type", "bridge")
    outcome = cni.run("ADD", conf, netns=pod)
    assert not outcome.ok
    assert 'container veth name "eth0" already exists' in outcome.error
    assert node_veths(cni.node) == []
    assert reservations(cni.data_dir) == []


def test_check_detects_removed_route_address_and_masquerade(
    cni: Cni, pod_netns: Callable[[], str]
) -> None:
    conf = bridge_conf("1.0.0", cni.data_dir, ipMasq=True)
    pod = pod_netns()
    result = cni.add(conf, netns=pod)
    checked = with_prev(conf, result)
    assert cni.run("CHECK", checked, netns=pod).ok

    in_netns(pod, "ip", "route", "del", "default")
    outcome = cni.run("CHECK", checked, netns=pod)
    assert not outcome.ok and "Expected Route 0.0.0.0/0 via 10.244.1.1 not found" in outcome.error
    in_netns(pod, "ip", "route", "add", "default", "via", GATEWAY)
    assert cni.run("CHECK", checked, netns=pod).ok

    address = result["ips"][0]["address"]
    in_netns(pod, "ip", "addr", "del", address, "dev", "eth0")
    outcome = cni.run("CHECK", checked, netns=pod)
    assert not outcome.ok and f"Failed to match addr {address}" in outcome.error
    in_netns(pod, "ip", "addr", "add", address, "dev", "eth0")
    in_netns(pod, "ip", "route", "add", "default", "via", GATEWAY)
    assert cni.run("CHECK", checked, netns=pod).ok

    in_netns(
        cni.node,
        "nft",
        "delete",
        "element",
        "inet",
        "podnet-masq-cbr0",
        "pods4",
        "{",
        pod_address(result),
        "}",
    )
    outcome = cni.run("CHECK", checked, netns=pod)
    assert not outcome.ok and "masquerade" in outcome.error

    in_netns(cni.node, "ip", "link", "set", result["interfaces"][1]["name"], "nomaster")
    outcome = cni.run("CHECK", checked, netns=pod)
    assert not outcome.ok and "CNI veth created for bridge cni0 was not found" in outcome.error


def test_result_has_the_reference_shape(
    cni: Cni, pod_netns: Callable[[], str], netns_factory: Callable[[str], str], tmp_path: Any
) -> None:
    """Same config, one pod through ours and one through the reference bridge (in its own
    node namespace): the results have the same keys at every level."""
    conf = bridge_conf("1.0.0", cni.data_dir, dns={"nameservers": ["10.96.0.10"]})
    ours = cni.add(conf, netns=pod_netns())
    reference_cni = Cni(root=cni.root, node=netns_factory("node"), data_dir=tmp_path / "ref")
    theirs = reference_cni.add(
        bridge_conf("1.0.0", reference_cni.data_dir, dns={"nameservers": ["10.96.0.10"]}),
        netns=pod_netns(),
        executable="/usr/lib/cni/bridge",
    )

    def shape(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: shape(v) for k, v in value.items()}
        if isinstance(value, list):
            return [shape(v) for v in value]
        return type(value).__name__

    assert shape(ours) == shape(theirs)
    assert ours["dns"] == theirs["dns"] == {"nameservers": ["10.96.0.10"]}


def test_masquerade_lets_pods_reach_outside(
    cni: Cni, pod_netns: Callable[[], str], netns_factory: Callable[[str], str]
) -> None:
    # an "outside" host on the node's underlay, with no route back to the pod network
    outside = netns_factory("ext")
    in_netns(
        cni.node,
        "ip",
        "link",
        "add",
        "ul0",
        "type",
        "veth",
        "peer",
        "name",
        "ext0",
        "netns",
        outside,
    )
    in_netns(cni.node, "ip", "addr", "add", "192.0.2.10/24", "dev", "ul0")
    in_netns(cni.node, "ip", "link", "set", "ul0", "up")
    in_netns(outside, "ip", "addr", "add", "192.0.2.99/24", "dev", "ext0")
    in_netns(outside, "ip", "link", "set", "ext0", "up")

    masq_pod, plain_pod = pod_netns(), pod_netns()
    cni.add(bridge_conf("1.0.0", cni.data_dir, ipMasq=True), netns=masq_pod, container_id="m")
    plain = bridge_conf("1.0.0", cni.data_dir, name="plain", bridge="cni1", subnet="10.244.2.0/24")
    cni.add(plain, netns=plain_pod, container_id="p")
    assert ping(masq_pod, "192.0.2.99")
    assert not ping(plain_pod, "192.0.2.99")


def test_gc_drops_masquerade_of_unknown_attachments(cni: Cni, pod_netns: Callable[[], str]) -> None:
    conf = bridge_conf("1.1.0", cni.data_dir, ipMasq=True)
    kept = cni.add(conf, netns=pod_netns(), container_id="kept")
    gone = cni.add(conf, netns=pod_netns(), container_id="gone")
    # Without the valid list GC refuses (invalid config) rather than wipes.
    without_list = cni.run("GC", dict(conf))
    assert without_list.out is not None and without_list.out["code"] == 7, without_list.stderr
    assert masq_elements(cni.node) == {
        pod_address(kept): "kept/eth0",
        pod_address(gone): "gone/eth0",
    }
    gc = dict(conf)
    gc["cni.dev/valid-attachments"] = [{"containerID": "kept", "ifname": "eth0"}]
    outcome = cni.run("GC", gc)
    assert outcome.ok, outcome.out
    assert masq_elements(cni.node) == {pod_address(kept): "kept/eth0"}


def kernel_has_vlan_filtering(netns: str) -> bool:
    probe = in_netns(
        netns, "ip", "link", "add", "pn-probe", "type", "bridge", "vlan_filtering", "1"
    )
    in_netns(netns, "ip", "link", "del", "pn-probe")
    return probe.returncode == 0


def test_vlan_gateway_interface(cni: Cni, pod_netns: Callable[[], str]) -> None:
    conf = bridge_conf("1.0.0", cni.data_dir, vlan=100, hairpinMode=False)
    pods = [pod_netns(), pod_netns()]
    if not kernel_has_vlan_filtering(cni.node):
        outcome = cni.run("ADD", conf, netns=pods[0])
        assert not outcome.ok and "CONFIG_BRIDGE_VLAN_FILTERING" in outcome.error
        assert node_veths(cni.node) == [] and reservations(cni.data_dir) == []
        pytest.skip("this kernel has no bridge VLAN filtering: only the clean refusal was checked")
    results = add_pods(cni, conf, pods, workers=1)
    assert results[0]["interfaces"][3]["name"] == "cni0.100"
    with open_rtnl(cni.node) as nl:
        gateway = get_link(nl, "cni0.100")
        addresses = list_addresses(nl, gateway.index, version=4)
        assert [str(a.address) for a in addresses] == ["10.244.1.1/24"]
    assert ping(pods[0], GATEWAY) and ping(pods[0], pod_address(results[1]))
    port = results[0]["interfaces"][1]["name"]
    vlans = in_netns(cni.node, "bridge", "-j", "vlan", "show", "dev", port).stdout.replace(" ", "")
    assert '"vlan":100' in vlans and '"vlan":1,' not in vlans


def test_port_isolation_and_hairpin(cni: Cni, pod_netns: Callable[[], str]) -> None:
    conf = bridge_conf("1.0.0", cni.data_dir, portIsolation=True)
    pods = [pod_netns(), pod_netns()]
    results = add_pods(cni, conf, pods, workers=1)
    port = results[0]["interfaces"][1]["name"]
    details = in_netns(cni.node, "bridge", "-d", "link", "show", "dev", port).stdout
    assert "hairpin on" in details and "isolated on" in details
    assert ping(pods[0], GATEWAY)
    assert not ping(pods[0], pod_address(results[1])), "isolated ports must not reach each other"


def test_runtime_mac_and_dns(cni: Cni, pod_netns: Callable[[], str]) -> None:
    conf = bridge_conf(
        "1.0.0", cni.data_dir, dns={"nameservers": ["10.96.0.10"], "search": ["svc"]}
    )
    pod = pod_netns()
    result = cni.add(conf, netns=pod, args="IgnoreUnknown=1;K8S_POD_NAME=p;MAC=0a:58:0a:f4:01:63")
    assert result["interfaces"][2]["mac"] == "0a:58:0a:f4:01:63"
    with open_rtnl(pod) as nl:
        assert get_link(nl, "eth0").mac == "0a:58:0a:f4:01:63"
    assert result["dns"] == {"nameservers": ["10.96.0.10"], "search": ["svc"]}


def test_status_forwards_to_ipam(cni: Cni) -> None:
    conf = bridge_conf("1.1.0", cni.data_dir)
    assert cni.run("STATUS", conf).ok
    conf["ipam"]["type"] = "no-such-ipam"
    outcome = cni.run("STATUS", conf)
    assert not outcome.ok and "no-such-ipam" in outcome.error


def test_add_into_missing_netns_fails_cleanly(cni: Cni) -> None:
    outcome = cni.run("ADD", bridge_conf("1.0.0", cni.data_dir), netns="/var/run/netns/pn-missing")
    assert not outcome.ok and "failed to open netns" in outcome.error
    assert reservations(cni.data_dir) == []


def test_dual_stack(cni: Cni, pod_netns: Callable[[], str]) -> None:
    ranges = {"ranges": [[{"subnet": "10.244.1.0/24"}], [{"subnet": "fd00:10:244:1::/64"}]]}
    conf = bridge_conf("1.0.0", cni.data_dir, ipam=ranges, ipMasq=True)
    pods = [pod_netns(), pod_netns()]
    results = add_pods(cni, conf, pods, workers=1)
    v6 = [str(r["ips"][1]["address"]).split("/")[0] for r in results]
    assert [r["ips"][1]["gateway"] for r in results] == ["fd00:10:244:1::1"] * 2
    assert {"dst": "::/0", "gw": "fd00:10:244:1::1"} in results[0]["routes"]
    with open_rtnl(cni.node) as nl:
        bridge = get_link(nl, "cni0")
        assert [
            str(a.address) for a in list_addresses(nl, bridge.index, version=6) if a.is_global
        ] == ["fd00:10:244:1::1/64"]
    assert ping(pods[0], v6[1]) and ping(pods[1], "fd00:10:244:1::1")
    assert in_netns(cni.node, "cat", "/proc/sys/net/ipv6/conf/all/forwarding").stdout.strip() == "1"
    assert set(masq_elements(cni.node)) == {pod_address(r) for r in results} | set(v6)
    del_pods(cni, conf, pods, results)
    assert masq_elements(cni.node) == {} and reservations(cni.data_dir) == []


def test_add_into_a_fifo_is_code_4_and_allocates_nothing(cni: Cni, tmp_path: Path) -> None:
    fifo = str(tmp_path / "not-a-netns")
    os.mkfifo(fifo)
    outcome = cni.run("ADD", bridge_conf("1.0.0", cni.data_dir), netns=fifo)
    assert outcome.out is not None and outcome.out["code"] == 4, outcome.out
    assert "is not a network namespace" in outcome.error
    assert reservations(cni.data_dir) == []
