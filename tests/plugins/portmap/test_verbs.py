"""portmap ADD, CHECK, DEL and GC on the table, through the installed executable in a
node namespace: owners, conflicts, both families, what CHECK finds missing."""

from __future__ import annotations

from typing import Any

import pytest

from podnet.netlink import nft_apply, nft_list, run_in_netns
from tests.plugins.main._support import Cni
from tests.plugins.portmap._node import portmap_conf

pytestmark = pytest.mark.root

POD = "/var/run/netns/pod-of-test"  # never entered: portmap works in the node only
TCP_8080 = {"hostPort": 8080, "containerPort": 80, "protocol": "tcp"}


def result(*addresses: str, ifname: str = "eth0") -> dict[str, Any]:
    return {
        "cniVersion": "1.1.0",
        "interfaces": [
            {"name": "cni0"},
            {"name": ifname, "sandbox": POD},
            {"name": "net2", "sandbox": POD},
        ],
        "ips": [{"address": a, "interface": 1} for a in addresses]
        + [{"address": "10.99.0.5/24", "interface": 2}],  # another interface: not mapped
    }


def conf(mappings: list[dict[str, Any]], prev: dict[str, Any] | None, **keys: Any) -> Any:
    return portmap_conf(mappings, prev, version="1.1.0", **keys)


def elements(node: str) -> dict[str, list[tuple[str, str]]]:
    """set or map name -> [(element as nft prints it, owner)]."""

    def listed() -> Any:
        return nft_list({"table": {"family": "inet", "name": "podnet-portmap"}})

    out: dict[str, list[tuple[str, str]]] = {}
    for item in run_in_netns(node, listed):
        declared = item.get("map") or item.get("set")
        if not declared:
            continue
        for elem in declared.get("elem", []):
            key = elem[0] if isinstance(elem, list) else elem
            val = key["elem"]["val"]
            parts = val["concat"] if isinstance(val, dict) else [val]
            text = " . ".join(
                f"{p['prefix']['addr']}/{p['prefix']['len']}" if isinstance(p, dict) else str(p)
                for p in parts
            )
            if isinstance(elem, list):
                text += " : " + " . ".join(str(p) for p in elem[1]["concat"])
            out.setdefault(declared["name"], []).append((text, key["elem"]["comment"]))
    return {name: sorted(items) for name, items in out.items()}


def test_dual_stack_pod_gets_both_families_and_host_ip_only_its_own(
    node_netns: str, portmap: Cni
) -> None:
    mappings = [
        TCP_8080,
        {"hostPort": 53, "containerPort": 5353, "protocol": "UDP"},
        {"hostPort": 9090, "containerPort": 90, "protocol": "sctp", "hostIP": "192.0.2.1"},
        {"hostPort": 9191, "containerPort": 91, "hostIP": "::"},  # any address, v6 only
    ]
    prev = result("10.244.1.5/24", "fd00:1::5/64")
    out = portmap.add(conf(mappings, prev), netns=POD, container_id="p1")
    assert out["ips"] == prev["ips"]
    owner = "cbr0/p1/eth0"
    assert elements(node_netns) == {
        "hostports4": [
            ("tcp . 8080 : 10.244.1.5 . 80", owner),
            ("udp . 53 : 10.244.1.5 . 5353", owner),
        ],
        "hostports6": [
            ("tcp . 8080 : fd00:1::5 . 80", owner),
            ("tcp . 9191 : fd00:1::5 . 91", owner),
            ("udp . 53 : fd00:1::5 . 5353", owner),
        ],
        "hostipports4": [("192.0.2.1 . sctp . 9090 : 10.244.1.5 . 90", owner)],
        "hairpin4": [("10.244.1.5 . 10.244.1.0/24", owner)],
        "hairpin6": [("fd00:1::5 . fd00:1::/64", owner)],
        "localhost4": [("10.244.1.5", owner)],
    }
    assert portmap.run("CHECK", conf(mappings, prev), netns=POD, container_id="p1").ok
    # DEL of the pod, without prevResult, takes every element of the owner
    assert portmap.run("DEL", conf(mappings, None), container_id="p1").ok
    assert elements(node_netns) == {}
    assert portmap.run("DEL", conf(mappings, None), container_id="p1").ok  # again: fine


def test_a_taken_host_port_is_a_clear_error_and_a_repeated_add_is_not(
    node_netns: str, portmap: Cni
) -> None:
    first = conf([TCP_8080], result("10.244.1.5/24"))
    portmap.add(first, netns=POD, container_id="p1")
    portmap.add(first, netns=POD, container_id="p1")  # the runtime retried: same owner
    second = conf([{"hostPort": 9000, "containerPort": 90}, TCP_8080], result("10.244.1.6/24"))
    outcome = portmap.run("ADD", second, netns=POD, container_id="p2")
    assert not outcome.ok
    assert outcome.out is not None
    assert outcome.out["msg"] == "hostPort 8080/tcp is already mapped on this node"
    assert outcome.out["details"] == "held by cbr0/p1/eth0"
    # nothing of the refused pod was written (one transaction)
    owners = {owner for items in elements(node_netns).values() for _, owner in items}
    assert owners == {"cbr0/p1/eth0"}
    # the same port on another protocol is another key
    third = conf(
        [{"hostPort": 8080, "containerPort": 80, "protocol": "udp"}], result("10.244.1.7/24")
    )
    portmap.add(third, netns=POD, container_id="p3")


def test_every_address_and_one_address_conflict_as_kubernetes_decides(
    node_netns: str, portmap: Cni
) -> None:
    """The scheduler's and kubelet's CheckConflict: no hostIP (every address) against a
    hostIP, same protocol and port, conflict, whichever came first; two different
    hostIPs do not; a pod repeating its own ADD is no conflict."""
    one = {"hostPort": 8080, "containerPort": 80, "hostIP": "192.0.2.1"}
    other = {"hostPort": 8080, "containerPort": 80, "hostIP": "192.0.2.9"}
    portmap.add(conf([TCP_8080], result("10.244.1.5/24")), netns=POD, container_id="p1")
    refused = portmap.run("ADD", conf([one], result("10.244.1.6/24")), netns=POD, container_id="p2")
    assert not refused.ok and refused.out is not None
    assert refused.out["msg"] == "hostPort 192.0.2.1:8080/tcp is already mapped on this node"
    assert refused.out["details"] == "held by cbr0/p1/eth0 as hostPort 8080/tcp"
    assert portmap.run("DEL", conf([TCP_8080], None), container_id="p1").ok
    portmap.add(conf([one], result("10.244.1.6/24")), netns=POD, container_id="p2")
    portmap.add(conf([other], result("10.244.1.7/24")), netns=POD, container_id="p3")
    portmap.add(conf([one], result("10.244.1.6/24")), netns=POD, container_id="p2")  # again
    refused = portmap.run("ADD", conf([TCP_8080], result("10.244.1.5/24")), netns=POD)
    assert not refused.ok and refused.out is not None
    assert refused.out["msg"] == "hostPort 8080/tcp is already mapped on this node"
    assert refused.out["details"] in (
        "held by cbr0/p2/eth0 as hostPort 192.0.2.1:8080/tcp",
        "held by cbr0/p3/eth0 as hostPort 192.0.2.9:8080/tcp",
    )
    # the same port on another protocol is no conflict
    udp = {"hostPort": 8080, "containerPort": 80, "protocol": "udp"}
    portmap.add(conf([udp], result("10.244.1.8/24")), netns=POD, container_id="p4")
    owners = {owner for items in elements(node_netns).values() for _, owner in items}
    assert owners == {"cbr0/p2/eth0", "cbr0/p3/eth0", "cbr0/p4/eth0"}


def test_check_finds_what_is_missing_or_taken_over(node_netns: str, portmap: Cni) -> None:
    config = conf([TCP_8080], result("10.244.1.5/24"))
    portmap.add(config, netns=POD, container_id="p1")
    assert portmap.run("CHECK", config, netns=POD, container_id="p1").ok
    no_prev = portmap.run("CHECK", conf([TCP_8080], None), netns=POD, container_id="p1")
    assert not no_prev.ok and "prevResult" in no_prev.error
    table = {"family": "inet", "table": "podnet-portmap"}

    def drop(name: str, elem: Any) -> None:
        run_in_netns(
            node_netns,
            lambda: nft_apply([{"delete": {"element": {**table, "name": name, "elem": [elem]}}}]),
        )

    drop("localhost4", "10.244.1.5")
    outcome = portmap.run("CHECK", config, netns=POD, container_id="p1")
    assert not outcome.ok and "localhost4 element of cbr0/p1/eth0 is missing" in outcome.error
    portmap.add(config, netns=POD, container_id="p1")
    drop("hostports4", {"concat": ["tcp", 8080]})
    outcome = portmap.run("CHECK", config, netns=POD, container_id="p1")
    assert not outcome.ok and "hostPort 8080/tcp of cbr0/p1/eth0 is missing" in outcome.error
    portmap.add(config, netns=POD, container_id="p1")
    run_in_netns(
        node_netns,
        lambda: nft_apply([{"flush": {"chain": {**table, "name": "prerouting"}}}]),
    )
    outcome = portmap.run("CHECK", config, netns=POD, container_id="p1")
    assert not outcome.ok and 'missing hostport rules in "prerouting" chain' in outcome.error


def test_gc_keeps_valid_attachments_and_other_networks(node_netns: str, portmap: Cni) -> None:
    portmap.add(conf([TCP_8080], result("10.244.1.5/24")), netns=POD, container_id="p1")
    portmap.add(
        conf([{"hostPort": 8081, "containerPort": 80}], result("10.244.1.6/24")),
        netns=POD,
        container_id="p2",
    )
    portmap.add(
        conf([{"hostPort": 8082, "containerPort": 80}], result("10.245.1.6/24"), network="other"),
        netns=POD,
        container_id="p3",
    )
    gc_conf = {
        "cniVersion": "1.1.0",
        "name": "cbr0",
        "type": "portmap",
        "cni.dev/valid-attachments": [{"containerID": "p2", "ifname": "eth0"}],
    }
    assert portmap.run("GC", gc_conf).ok
    owners = {owner for items in elements(node_netns).values() for _, owner in items}
    assert owners == {"cbr0/p2/eth0", "other/p3/eth0"}
    without_list = portmap.run("GC", {k: v for k, v in gc_conf.items() if "cni.dev" not in k})
    assert not without_list.ok  # without the list, GC refuses rather than wipes


def test_nothing_to_map_touches_nothing(node_netns: str, portmap: Cni) -> None:
    prev = result("10.244.1.5/24")
    out = portmap.add(conf([], prev), netns=POD, container_id="p1")
    assert out["ips"] == prev["ips"]
    no_prev = portmap.run("ADD", conf([TCP_8080], None), netns=POD, container_id="p1")
    assert not no_prev.ok and no_prev.error.startswith("must be called as chained plugin")
    assert portmap.run("DEL", conf([], None), container_id="p1").ok
    listed = run_in_netns(node_netns, lambda: nft_list({"tables": None}))
    assert [item for item in listed if "table" in item] == []


def test_del_with_a_config_it_cannot_read_still_unmaps(node_netns: str, portmap: Cni) -> None:
    portmap.add(conf([TCP_8080], result("10.244.1.5/24")), netns=POD, container_id="p1")
    bad = conf([TCP_8080], None, markMasqBit=99)
    assert not portmap.run(
        "ADD", conf([TCP_8080], result("10.244.1.5/24"), markMasqBit=99), netns=POD
    ).ok
    assert portmap.run("DEL", bad, container_id="p1").ok
    assert elements(node_netns) == {}


def test_conditions_restrict_which_traffic_is_mapped(node_netns: str, portmap: Cni) -> None:
    config = conf([TCP_8080], result("10.244.1.5/24"), conditionsV4=["ip saddr != 192.0.2.99"])
    portmap.add(config, netns=POD, container_id="p1")
    rules = run_in_netns(
        node_netns,
        lambda: nft_list(
            {"chain": {"family": "inet", "table": "podnet-portmap", "name": "prerouting"}}
        ),
    )
    texts = [str(item["rule"]["expr"]) for item in rules if "rule" in item]
    assert any("192.0.2.99" in text for text in texts)
    iptables_style = conf([TCP_8080], result("10.244.1.5/24"), conditionsV4=["-s", "1.2.3.4"])
    outcome = portmap.run("ADD", iptables_style, netns=POD, container_id="p1")
    assert not outcome.ok and outcome.out is not None and outcome.out["code"] == 7
    assert "iptables-specific options [conditionsV4]" in outcome.error
    injected = conf(
        [TCP_8080], result("10.244.1.5/24"), conditionsV4=["ip saddr 1.2.3.4; flush ruleset"]
    )
    outcome = portmap.run("ADD", injected, netns=POD, container_id="p1")
    assert not outcome.ok and outcome.out is not None and outcome.out["code"] == 7
