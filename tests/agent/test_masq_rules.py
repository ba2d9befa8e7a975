from __future__ import annotations

import subprocess
import uuid
from ipaddress import IPv4Network

import pytest

from podnet.agent import (
    MasqueradeError,
    apply_ruleset,
    ensure_ruleset,
    masq_counters,
    remove_ruleset,
    render_ruleset,
)
from podnet.netlink import create_netns, delete_netns

NET = IPv4Network("10.244.0.0/16")
POD = IPv4Network("10.244.1.0/24")


def rules(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if "counter" in line]


def test_flannels_postrouting_rules_in_order() -> None:
    assert rules(render_ruleset(NET, POD))[:6] == [
        'meta mark & 0x4000 == 0x4000 counter return comment "kube-proxy marked"',
        'ip saddr 10.244.1.0/24 ip daddr 10.244.0.0/16 counter return comment "pod to cluster"',
        'ip saddr 10.244.0.0/16 ip daddr 10.244.1.0/24 counter return comment "cluster to pod"',
        'ip saddr != 10.244.0.0/16 ip daddr 10.244.1.0/24 counter return comment "outside to pod"',
        "ip saddr 10.244.0.0/16 ip daddr != 224.0.0.0/4 counter masquerade fully-random"
        ' comment "pod to outside"',
        "ip saddr != 10.244.0.0/16 ip daddr 10.244.0.0/16 counter masquerade fully-random"
        ' comment "host to pods"',
    ]


def test_forward_rules_accept_the_cluster_network() -> None:
    assert rules(render_ruleset(NET, POD, masquerade=False)) == [
        'ip saddr 10.244.0.0/16 counter accept comment "forward from cluster"',
        'ip daddr 10.244.0.0/16 counter accept comment "forward to cluster"',
    ]


def test_plain_masquerade_when_fully_random_is_off() -> None:
    text = render_ruleset(NET, POD, fully_random=False)
    assert "fully-random" not in text and "counter masquerade comment" in text


@pytest.mark.root
def test_applied_atomically_replaced_and_removed(tmp_path) -> None:
    path = str(tmp_path / f"pn-{uuid.uuid4().hex[:8]}")
    create_netns(path)
    try:
        apply_ruleset(path, render_ruleset(NET, POD))
        apply_ruleset(path, render_ruleset(NET, POD))  # replaced, not piled up
        assert len(masq_counters(path)) == 8
        with pytest.raises(MasqueradeError, match="nft"):
            apply_ruleset(path, render_ruleset(NET, POD).replace("masquerade", "bogus", 1))
        assert len(masq_counters(path)) == 8, "a refused document changes nothing"
        remove_ruleset(path)
        remove_ruleset(path)
        assert masq_counters(path) == {}
    finally:
        delete_netns(path)


@pytest.mark.root
def test_ensure_puts_back_missing_rules_and_leaves_a_whole_table(tmp_path) -> None:
    path = str(tmp_path / f"pn-{uuid.uuid4().hex[:8]}")
    create_netns(path)
    nft = ["nsenter", f"--net={path}", "nft"]
    try:
        ruleset = render_ruleset(NET, POD)
        assert ensure_ruleset(path, ruleset) is True  # no table yet
        assert ensure_ruleset(path, ruleset) is False  # whole: left alone
        subprocess.run([*nft, "flush", "chain", "ip", "podnet-agent", "postrouting"], check=True)
        assert set(masq_counters(path)) == {"forward from cluster", "forward to cluster"}
        assert ensure_ruleset(path, ruleset) is True
        assert len(masq_counters(path)) == 8
        subprocess.run([*nft, "delete", "table", "ip", "podnet-agent"], check=True)
        assert ensure_ruleset(path, ruleset) is True
        assert len(masq_counters(path)) == 8
    finally:
        delete_netns(path)
