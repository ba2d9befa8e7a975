"""UDP hostPorts and conntrack: a flow that began before the mapping, or while another pod
held the port, must not keep its old verdict (real datagrams from a fixed source port,
so that every send belongs to the same conntrack entry)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import pytest

from tests.plugins.main._support import Cni
from tests.plugins.portmap._node import (
    NODE_IP,
    POD_IPS,
    HostPortNode,
    pod_result,
    portmap_conf,
    stop_server,
)

pytestmark = pytest.mark.root

UDP_5353 = {"hostPort": 5353, "containerPort": 53, "protocol": "udp"}

# answers every datagram with its tag, so a test knows which pod got it
_TAGGED = r"""
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", 53))
print("ready", flush=True)
while True:
    _, peer = s.recvfrom(100); s.sendto(sys.argv[1].encode(), peer)
"""

# one datagram from a fixed source port; the answer, or "silence"
_ASK = r"""
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", int(sys.argv[3]))); s.settimeout(float(sys.argv[4]))
s.sendto(b"hi", (sys.argv[1], int(sys.argv[2])))
try:
    print(s.recvfrom(100)[0].decode())
except OSError:
    print("silence")
"""


@pytest.fixture
def tagged(hostport_node: HostPortNode) -> Iterator[None]:
    """A server on UDP port 53 in each pod, answering "pod1" and "pod2"."""
    servers = []
    try:
        for index, pod in enumerate(hostport_node.pods):
            server = subprocess.Popen(
                ["nsenter", f"--net={pod}", sys.executable, "-c", _TAGGED, f"pod{index + 1}"],
                stdout=subprocess.PIPE,
            )
            servers.append(server)
            assert server.stdout is not None and server.stdout.readline().strip() == b"ready"
        yield
    finally:
        for server in servers:
            stop_server(server)


def ask(netns: str, source_port: int, timeout: float = 3.0) -> str:
    done = subprocess.run(
        ["nsenter", f"--net={netns}", sys.executable, "-c", _ASK,
         NODE_IP, "5353", str(source_port), str(timeout)],
        capture_output=True, text=True, timeout=30, check=True,
    )  # fmt: skip
    return done.stdout.strip()


def test_a_flow_that_began_before_the_mapping_reaches_the_pod(
    hostport_node: HostPortNode, portmap: Cni, tagged: None
) -> None:
    node = hostport_node
    pod1, pod2 = node.pods
    # the node maps another hostPort already (a real node's conntrack is always on)
    other = {"hostPort": 8080, "containerPort": 80, "protocol": "tcp"}
    portmap.add(portmap_conf([other], pod_result(pod2, POD_IPS[1])), netns=pod2, container_id="p2")
    # nothing maps 5353 yet: the datagram is the node's, which nobody answers; conntrack
    # keeps the flow (without NAT) as long as datagrams keep coming
    assert ask(node.outside, 40000, timeout=1.0) == "silence"
    portmap.add(
        portmap_conf([UDP_5353], pod_result(pod1, POD_IPS[0])), netns=pod1, container_id="p1"
    )
    # without the ADD's flush this datagram would follow the old entry to the node
    assert ask(node.outside, 40000) == "pod1"


def test_a_pod_that_lost_its_host_port_gets_no_more_of_its_flows(
    hostport_node: HostPortNode, portmap: Cni, tagged: None
) -> None:
    node = hostport_node
    pod1, pod2 = node.pods
    portmap.add(
        portmap_conf([UDP_5353], pod_result(pod1, POD_IPS[0])), netns=pod1, container_id="p1"
    )
    assert ask(node.outside, 40001) == "pod1"
    assert ask(node.pods[1], 40002) == "pod1"  # another flow, from pod2 (masqueraded)
    outcome = portmap.run("DEL", portmap_conf([UDP_5353], None), container_id="p1")
    assert outcome.ok, outcome.out
    # pod1 still runs its server: the old entry would still DNAT to it
    assert ask(node.outside, 40001, timeout=1.0) == "silence"
    portmap.add(
        portmap_conf([UDP_5353], pod_result(pod2, POD_IPS[1])), netns=pod2, container_id="p2"
    )
    assert ask(node.outside, 40001) == "pod2"
    assert ask(node.pods[1], 40002) == "pod2"
