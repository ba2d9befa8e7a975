"""The masquerade table: elements owned per attachment (nft inside a node namespace)."""

from __future__ import annotations

import ipaddress

import pytest

from podnet.netlink import nft_apply, nft_list, run_in_netns
from podnet.plugins._declared import DeclaredTables
from podnet.plugins.main.bridge import _masq
from tests.plugins.main._support import masq_elements

pytestmark = pytest.mark.root


def ip(text: str) -> ipaddress.IPv4Interface | ipaddress.IPv6Interface:
    return ipaddress.ip_interface(text)


def test_owners_add_take_over_and_remove(node_netns: str) -> None:
    def scenario() -> None:
        declared = DeclaredTables()
        _masq.add_pod(declared, "cbr0", "a/eth0", [ip("10.244.1.2/24"), ip("fd00:1::2/64")])
        _masq.add_pod(declared, "cbr0", "b/eth0", [ip("10.244.1.3/24")])
        _masq.add_pod(
            declared, "cbr0", "b/eth0", [ip("10.244.1.3/24")]
        )  # ADD twice: still one element
        # a new pod got an address whose old owner's DEL never came: it takes it over
        _masq.add_pod(declared, "cbr0", "c/eth0", [ip("10.244.1.2/24")])
        assert _masq.pod_addresses("cbr0", "c/eth0") == {ipaddress.ip_address("10.244.1.2")}
        assert _masq.remove_pod("cbr0", "a/eth0") == [ipaddress.ip_address("fd00:1::2")]
        assert _masq.remove_pod("cbr0", "a/eth0") == []
        assert _masq.remove_all_but("cbr0", {"c/eth0"}) == [ipaddress.ip_address("10.244.1.3")]
        assert _masq.remove_pod("other-net", "c/eth0") == []  # no table at all

    run_in_netns(node_netns, scenario)
    assert masq_elements(node_netns) == {"10.244.1.2": "c/eth0"}


def test_remove_by_address_leaves_what_another_owner_holds(node_netns: str) -> None:
    def scenario() -> None:
        declared = DeclaredTables()
        _masq.add_pod(declared, "cbr0", "a/eth0", [ip("10.244.1.2/24"), ip("fd00:1::2/64")])
        _masq.add_pod(declared, "cbr0", "b/eth0", [ip("10.244.1.3/24")])
        a_ips = [ipaddress.ip_address("10.244.1.2"), ipaddress.ip_address("fd00:1::2")]
        b_ip = ipaddress.ip_address("10.244.1.3")
        # a's prevResult names b's address too (a stale result): b keeps its element
        assert _masq.remove_pod("cbr0", "a/eth0", [*a_ips, b_ip]) == a_ips
        assert _masq.remove_pod("cbr0", "a/eth0", a_ips) == []  # DEL again: nothing left
        assert _masq.remove_pod("other-net", "a/eth0", a_ips) == []  # no table at all

    run_in_netns(node_netns, scenario)
    assert masq_elements(node_netns) == {"10.244.1.3": "b/eth0"}


def test_the_table_comes_back_when_removed_or_its_rules_flushed(
    node_netns: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    table = _masq.table_name("cbr0")

    def rules() -> int:
        listed = nft_list({"table": {"family": "inet", "name": table}})
        return sum(1 for item in listed if "rule" in item)

    def scenario() -> None:
        declared = DeclaredTables()
        _masq.add_pod(declared, "cbr0", "a/eth0", [ip("10.244.1.2/24")])
        nft_apply([{"delete": {"table": {"family": "inet", "name": table}}}])
        _masq.add_pod(declared, "cbr0", "b/eth0", [ip("10.244.1.3/24")])  # declared again
        assert rules() == 2
        nft_apply([{"flush": {"chain": {"family": "inet", "table": table, "name": "postrouting"}}}])
        _masq.add_pod(declared, "cbr0", "c/eth0", [ip("10.244.1.4/24")])
        assert rules() == 0  # within _REDECLARE_SECONDS only the elements are written
        monkeypatch.setattr(_masq, "_REDECLARE_SECONDS", 0.0)
        _masq.add_pod(declared, "cbr0", "d/eth0", [ip("10.244.1.5/24")])
        assert rules() == 2

    run_in_netns(node_netns, scenario)
    assert masq_elements(node_netns) == {
        "10.244.1.3": "b/eth0",
        "10.244.1.4": "c/eth0",
        "10.244.1.5": "d/eth0",
    }
