"""The masquerade table: elements owned per attachment (nft inside a node namespace)."""

from __future__ import annotations

import ipaddress

import pytest

from podnet.netlink import run_in_netns
from podnet.plugins.main.bridge import _masq
from tests.plugins.main._support import masq_elements

pytestmark = pytest.mark.root


def ip(text: str) -> ipaddress.IPv4Interface | ipaddress.IPv6Interface:
    return ipaddress.ip_interface(text)


def test_owners_add_take_over_and_remove(node_netns: str) -> None:
    def scenario() -> None:
        _masq.add_pod("cbr0", "a/eth0", [ip("10.244.1.2/24"), ip("fd00:1::2/64")])
        _masq.add_pod("cbr0", "b/eth0", [ip("10.244.1.3/24")])
        _masq.add_pod("cbr0", "b/eth0", [ip("10.244.1.3/24")])  # ADD twice: still one element
        # a new pod got an address whose old owner's DEL never came: it takes it over
        _masq.add_pod("cbr0", "c/eth0", [ip("10.244.1.2/24")])
        assert _masq.pod_addresses("cbr0", "c/eth0") == {ipaddress.ip_address("10.244.1.2")}
        assert _masq.remove_pod("cbr0", "a/eth0") == [ipaddress.ip_address("fd00:1::2")]
        assert _masq.remove_pod("cbr0", "a/eth0") == []
        assert _masq.remove_all_but("cbr0", {"c/eth0"}) == [ipaddress.ip_address("10.244.1.3")]
        assert _masq.remove_pod("other-net", "c/eth0") == []  # no table at all

    run_in_netns(node_netns, scenario)
    assert masq_elements(node_netns) == {"10.244.1.2": "c/eth0"}
