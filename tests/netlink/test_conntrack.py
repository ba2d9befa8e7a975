"""Conntrack entries deleted over ctnetlink, by protocol, destination port and the
address answers come from, in a throwaway namespace with real UDP flows on loopback."""

from __future__ import annotations

import socket
import uuid
from ipaddress import IPv4Address

import pytest

from podnet.netlink import (
    Rtnl,
    _conntrack,
    create_netns,
    delete_conntrack_entries,
    delete_netns,
    nft_apply_text,
    run_in_netns,
    set_loopback_up,
)

pytestmark = pytest.mark.root

# a rule that needs conntrack turns it on in the namespace (as any NAT on a node does)
TRACKING = """add table ip tracking
add chain ip tracking out { type filter hook output priority 0; policy accept; }
add rule ip tracking out ct state new counter
"""


@pytest.fixture
def netns(tmp_path):
    path = str(tmp_path / f"pn-ct{uuid.uuid4().hex[:8]}")
    create_netns(path)
    try:
        with Rtnl.open(path) as rtnl:
            set_loopback_up(rtnl)
        run_in_netns(path, lambda: nft_apply_text(TRACKING))
        yield path
    finally:
        delete_netns(path)


def send(destination: str, port: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.sendto(b"x", (destination, port))


def test_deletes_only_the_matching_flows(netns) -> None:
    def flows() -> None:
        send("127.0.0.1", 5353)
        send("127.0.0.2", 5353)
        send("127.0.0.1", 6000)
        send("127.0.0.1", 7000)

    def deleted(
        *ports: int, protocol: int = socket.IPPROTO_UDP, reply_source: IPv4Address | None = None
    ) -> int:
        return run_in_netns(
            netns,
            lambda: delete_conntrack_entries(4, protocol, ports, reply_source=reply_source),
        )

    run_in_netns(netns, flows)
    assert deleted(5353, protocol=socket.IPPROTO_TCP) == 0  # another protocol
    assert deleted(5353, reply_source=IPv4Address("127.0.0.2")) == 1
    assert deleted(5353) == 1  # the flow to 127.0.0.1 was left
    assert deleted(5353) == 0
    assert deleted(6000, 7000, 8000) == 2  # one dump for several ports
    assert run_in_netns(netns, lambda: delete_conntrack_entries(6, socket.IPPROTO_UDP, {5353})) == 0


def test_a_namespace_that_tracks_nothing_is_not_dumped(tmp_path, monkeypatch) -> None:
    def no_socket(*_: object) -> None:
        raise AssertionError("the conntrack table was dumped")

    monkeypatch.setattr(_conntrack, "NetlinkSocket", no_socket)
    path = str(tmp_path / f"pn-ct{uuid.uuid4().hex[:8]}")
    create_netns(path)
    try:
        gone = run_in_netns(path, lambda: delete_conntrack_entries(4, socket.IPPROTO_UDP, {53}))
        assert gone == 0
    finally:
        delete_netns(path)
