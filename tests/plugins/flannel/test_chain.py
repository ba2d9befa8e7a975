"""The whole podnet chain as a runtime drives it: the installed `flannel` executable run in
a node namespace with CNI_PATH = podnet's bin dir only, so bridge and host-local are
podnet's too (run in-process by flannel). Pods are namespaces the test creates."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from tests.plugins.flannel._chain import (
    GATEWAY,
    NOTHING_LEFT,
    ChainNode,
)
from tests.plugins.main._support import (
    Cni,
    bridge_state,
    default_gateway,
    ping,
    pod_address,
    with_prev,
)

pytestmark = pytest.mark.root

ALL_VERSIONS = ["0.3.1", "0.4.0", "1.0.0", "1.1.0"]


def add_all(cni: Cni, conf: dict[str, Any], pods: list[str]) -> list[dict[str, Any]]:
    def one(i: int) -> dict[str, Any]:
        return cni.add(conf, netns=pods[i], container_id=f"pod{i}")

    with ThreadPoolExecutor(4) as pool:
        return list(pool.map(one, range(len(pods))))


def del_all(cni: Cni, conf: dict[str, Any], pods: list[str], results: list[dict[str, Any]]) -> None:
    # libcni sends prevResult to DEL from 0.4.0 on
    prev = conf["cniVersion"] not in ("0.3.0", "0.3.1")

    def one(i: int) -> None:
        config = with_prev(conf, results[i] if prev else None)
        outcome = cni.run("DEL", config, netns=pods[i], container_id=f"pod{i}")
        assert outcome.ok, outcome.out

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(one, range(len(pods))))


def assert_working_pods(chain: ChainNode, pods: list[str], addresses: list[str]) -> None:
    assert len(set(addresses)) == len(pods)
    subnet = ipaddress.ip_network("10.244.1.0/24")
    assert all(ipaddress.ip_address(a) in subnet and a != GATEWAY for a in addresses)
    # cni0 carries the gateway; its MTU is subnet.env's FLANNEL_MTU, not the 1500 default
    assert bridge_state(chain.node) == ([f"{GATEWAY}/24"], 1450)
    assert [default_gateway(pod) for pod in pods] == [GATEWAY] * len(pods)
    for i, pod in enumerate(pods):
        assert ping(pod, GATEWAY), f"pod {i} cannot reach the gateway"
        neighbour = addresses[(i + 1) % len(pods)]
        assert ping(pod, neighbour), f"pod {i} cannot reach {neighbour}"
    assert len(chain.veths()) == len(pods)
    assert chain.ipam_files() == sorted(addresses)
    assert chain.scratch_files() == sorted(f"pod{i}" for i in range(len(pods)))
    # FLANNEL_IPMASQ=false: the bridge masquerades every pod, one set element each
    assert sorted(chain.masq()) == sorted(addresses)
    assert set(chain.masq().values()) == {f"pod{i}/eth0" for i in range(len(pods))}


def test_twenty_pods_through_the_installed_flannel(
    chain: ChainNode, pod_netns: Callable[[], str]
) -> None:
    cni = chain.runner(str(chain.bin_dir))
    conf = chain.flannel_conf("1.1.0")
    pods = [pod_netns() for _ in range(20)]

    results = add_all(cni, conf, pods)
    assert all(r["cniVersion"] == "1.1.0" for r in results)
    assert_working_pods(chain, pods, [pod_address(r) for r in results])

    del_all(cni, conf, pods, results)
    assert chain.leftovers(pods) == NOTHING_LEFT
    again = cni.run("DEL", with_prev(conf, results[0]), netns=pods[0], container_id="pod0")
    assert again.ok, again.out


@pytest.mark.parametrize("version", ALL_VERSIONS)
def test_spec_versions(chain: ChainNode, pod_netns: Callable[[], str], version: str) -> None:
    cni = chain.runner(str(chain.bin_dir))
    conf = chain.flannel_conf(version)
    pods = [pod_netns() for _ in range(3)]

    results = add_all(cni, conf, pods)
    for result in results:
        assert result["cniVersion"] == version
        # bridge's three interfaces: cni0, the node end, the pod's eth0 (in its sandbox)
        assert [i["name"] for i in result["interfaces"]][::2] == ["cni0", "eth0"]
        assert ("version" in result["ips"][0]) == (version in ("0.3.1", "0.4.0"))
    assert_working_pods(chain, pods, [pod_address(r) for r in results])

    if version != "0.3.1":
        for i, pod in enumerate(pods):
            check = cni.run("CHECK", with_prev(conf, results[i]), netns=pod, container_id=f"pod{i}")
            assert check.ok, check.out
        # another pod's result is not this pod's network: CHECK says so
        wrong = cni.run("CHECK", with_prev(conf, results[1]), netns=pods[0], container_id="pod0")
        assert wrong.code == 1
    if version == "1.1.0":
        assert cni.run("STATUS", conf).ok
        chain.subnet_env.rename(chain.root / "subnet.env.away")
        down = cni.run("STATUS", conf)
        assert (down.code, down.out and down.out["code"]) == (1, 50)
        chain.subnet_env.with_name("subnet.env.away").rename(chain.subnet_env)

    del_all(cni, conf, pods, results)
    assert chain.leftovers(pods) == NOTHING_LEFT
