"""Dual-stack pods from a subnet.env as podnet's agent writes it, side by side: podnet's
chain (flannel -> bridge -> host-local) and podnet's flannel delegating to the reference
bridge and host-local (/usr/lib/cni; Debian ships no flannel plugin), on one cni0 and one
host-local data dir.

Both give every pod one address per family with the gateway of its family, the same
routes, IPv6 duplicate address detection off on the pod's interface (the reference
bridge's default, enableDad false) so the address is usable at once, router
advertisements off on cni0; every pod reaches every other over both families.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Callable
from ipaddress import IPv4Network, IPv6Network
from pathlib import Path
from typing import Any

import pytest

from podnet.agent import NetworkConfig, render_subnet_env
from podnet.netlink import get_link, list_addresses, open_rtnl, read_sysctl
from podnet.plugins._install import install_executables
from tests.plugins.flannel._chain import NOTHING_LEFT, ChainNode
from tests.plugins.main._support import REFERENCE_DIR, Cni, ping, with_prev

REFERENCE_BRIDGE = os.path.join(REFERENCE_DIR, "bridge")
VERSION = "1.0.0"  # the Debian reference plugins speak CNI up to 1.0.0
SUBNET = IPv4Network("10.244.1.0/24")
SUBNET_V6 = IPv6Network("fd00:10:244:1::/64")
CONFIG = NetworkConfig.from_dict(
    {"Network": "10.244.0.0/16", "EnableIPv6": True, "IPv6Network": "fd00:10:244::/56"}
)
SUBNET_ENV = render_subnet_env(CONFIG, subnet=SUBNET, ipv6_subnet=SUBNET_V6, mtu=1430, ip_masq=True)

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(
        not os.access(REFERENCE_BRIDGE, os.X_OK), reason="reference bridge not installed"
    ),
]


def shape(result: dict[str, Any]) -> tuple[list[tuple[int, str, int]], list[tuple[str, str]]]:
    """What a result says beyond the addresses it picked: per IP its family, gateway and
    prefix length; the routes."""
    ips: list[tuple[int, str, int]] = sorted(
        (
            ipaddress.ip_interface(ip["address"]).version,
            ip["gateway"],
            int(ip["address"].split("/")[1]),
        )
        for ip in result["ips"]
    )
    routes = sorted((r["dst"], r.get("gw", "")) for r in result.get("routes", []))
    return ips, routes


def addresses(result: dict[str, Any]) -> dict[int, str]:
    found: dict[int, str] = {}
    for ip in result["ips"]:
        address = ipaddress.ip_interface(ip["address"])
        found[address.version] = str(address.ip)
    return found


def test_dual_stack_pods_from_podnet_and_the_reference_bridge_side_by_side(
    cni_bin: Path, node_netns: str, pod_netns: Callable[[], str], tmp_path: Path
) -> None:
    assert "FLANNEL_IPV6_SUBNET=fd00:10:244:1::1/64" in SUBNET_ENV
    chain = ChainNode(
        node=node_netns, root=tmp_path, bin_dir=cni_bin / "bin", subnet_env_text=SUBNET_ENV
    )
    only_flannel = tmp_path / "bin-flannel"
    install_executables(str(only_flannel), ["flannel"])
    runners: dict[str, Cni] = {
        "reference": chain.runner(f"{only_flannel}:{REFERENCE_DIR}"),
        "podnet": chain.runner(str(chain.bin_dir)),
    }
    conf = chain.flannel_conf(VERSION)
    flannel = str(chain.bin_dir / "flannel")

    def run(way: str, command: str, pod: str, cid: str, prev: Any = None) -> Any:
        outcome = runners[way].run(
            command, with_prev(conf, prev), netns=pod, container_id=cid, executable=flannel
        )
        assert outcome.ok, (way, command, outcome.out or outcome.stderr)
        return outcome.out

    pods = [(way, pod_netns(), f"{way}-{i}") for i, way in enumerate(["reference", "podnet"] * 2)]
    results = {cid: run(way, "ADD", pod, cid) for way, pod, cid in pods}

    by_way = {way: shape(results[cid]) for way, _, cid in pods}
    assert by_way["podnet"] == by_way["reference"]
    ips, routes = by_way["podnet"]
    assert ips == [(4, "10.244.1.1", 24), (6, "fd00:10:244:1::1", 64)]
    assert ("fd00:10:244::/56", "") in routes and ("10.244.0.0/16", "") in routes
    for _, _, cid in pods:
        found = addresses(results[cid])
        assert ipaddress.ip_address(found[4]) in SUBNET
        assert ipaddress.ip_address(found[6]) in SUBNET_V6

    with open_rtnl(chain.node) as nl:
        bridge = get_link(nl, "cni0")
        on_bridge = sorted(str(a.address) for a in list_addresses(nl, bridge.index) if a.is_global)
    assert on_bridge == ["10.244.1.1/24", "fd00:10:244:1::1/64"]
    assert read_sysctl(chain.node, "net.ipv6.conf.cni0.accept_ra") == "0"
    for way, pod, cid in pods:
        assert read_sysctl(pod, "net.ipv6.conf.eth0.accept_dad") == "0", (way, cid)
        with open_rtnl(pod) as nl:
            eth0 = get_link(nl, "eth0")
            tentative = [a for a in list_addresses(nl, eth0.index, version=6) if a.tentative]
        assert tentative == [], f"{cid}: DAD still running"

    for _, pod, cid in pods:
        for _, _, other in pods:
            if other == cid:
                continue
            for version in (4, 6):
                target = addresses(results[other])[version]
                assert ping(pod, target), f"{cid} cannot reach {other} over IPv{version}"

    for way, pod, cid in pods:
        run(way, "DEL", pod, cid, prev=results[cid])
    assert chain.leftovers([pod for _, pod, _ in pods]) == NOTHING_LEFT
