"""The agent loop over a store-like node source, one agent thread per lab node."""

from __future__ import annotations

import logging
import os
import threading
import time
import uuid
from collections.abc import Callable
from functools import partial

import pytest

from podnet.agent import AgentLoop, AgentSettings, NodeSource, RtnlTables, lease_of
from podnet.lab import LabNode
from podnet.netlink import Rtnl
from tests.agent.cluster import VXLAN, Cluster, pod_cidr, unreachable_pairs, vxlan_triples
from tests.agent.fake_nodes import FakeNodes

pytestmark = pytest.mark.root


def eventually(check: Callable[[], bool], within: float = 1.0) -> float:
    """Seconds until `check()` held; fails after `within`."""
    start = time.monotonic()
    while not check():
        if time.monotonic() - start > within:
            raise AssertionError(f"not true within {within}s")
        time.sleep(0.02)
    return time.monotonic() - start


class Agents:
    """An AgentLoop thread per node, all on one FakeNodes."""

    def __init__(self, cluster: Cluster, source: FakeNodes) -> None:
        self.cluster = cluster
        self.source = source
        self.loops: dict[str, tuple[AgentLoop, threading.Event, threading.Thread]] = {}

    def start(self, node: LabNode) -> AgentLoop:
        checked: NodeSource = self.source  # the fake must satisfy the Protocol
        loop = AgentLoop(
            checked,
            VXLAN,
            AgentSettings(
                node=node.name,
                underlay=node.underlay_if,
                subnet_file=os.path.join(self.cluster.state_dir, node.name, "subnet.env"),
                netns=node.netns,
                resync=0.5,
                poll=0.05,
            ),
        )
        stop = threading.Event()
        thread = threading.Thread(target=loop.run, args=(stop,), name=f"agent-{node.name}")
        thread.start()
        self.loops[node.name] = (loop, stop, thread)
        return loop

    def stop(self, name: str) -> None:
        _, stop, thread = self.loops.pop(name)
        stop.set()
        thread.join(timeout=10)
        assert not thread.is_alive()

    def stop_all(self) -> None:
        for name in list(self.loops):
            self.stop(name)

    def matches_store(self, name: str) -> bool:
        """Whether node `name`'s kernel holds exactly the triples of the others' leases."""
        loop = self.loops[name][0]
        if loop.network is None or not loop.ready.is_set():
            return False
        nodes, _ = self.source.list_nodes()
        others = [lease for n in nodes if n.name != name and (lease := lease_of(n)) is not None]
        (device,) = loop.network.backend.owned_devices
        with Rtnl.open(loop.network.settings.netns) as rtnl:
            return RtnlTables(rtnl).read((device,)) == vxlan_triples(device, others)


@pytest.fixture
def agents(tmp_path):
    lab = "l" + uuid.uuid4().hex[:10]
    netns_dir = tmp_path / "netns"
    netns_dir.mkdir()
    cluster = Cluster.build(lab, str(netns_dir), str(tmp_path / "state"), 3)
    running = Agents(cluster, FakeNodes())
    try:
        yield running
    finally:
        running.stop_all()
        cluster.destroy()


def test_agents_wait_for_podcidrs_then_connect_every_pod(agents, caplog) -> None:
    caplog.set_level(logging.INFO, logger="podnet.agent")
    source, cluster = agents.source, agents.cluster
    for node in cluster.nodes:
        source.put(node.name)  # registered, no podCIDR yet
        agents.start(node)
    eventually(
        lambda: "node n1 has no podCIDR yet: is the nodeipam controller running?" in caplog.text
    )
    assert not os.path.exists(os.path.join(cluster.state_dir, "n1", "subnet.env"))

    for node in cluster.nodes:  # the nodeipam controller's job
        source.put(node.name, pod_cidrs=[str(pod_cidr(node))])
    for node in cluster.nodes:
        eventually(partial(agents.matches_store, node.name), within=5)
    assert source.get_node("n2").annotations["flannel.alpha.coreos.com/public-ip"] == ("192.0.2.11")
    assert unreachable_pairs(cluster.pods) == []


def test_a_joining_node_is_reachable_within_a_second_and_gone_when_deleted(agents) -> None:
    source, cluster = agents.source, agents.cluster
    for node in cluster.nodes:
        source.put(node.name, pod_cidrs=[str(pod_cidr(node))])
        agents.start(node)
    for node in cluster.nodes:
        eventually(partial(agents.matches_store, node.name), within=5)

    n4 = cluster.add_node("n4", 3)
    source.put("n4", pod_cidrs=[str(pod_cidr(n4))])
    agents.start(n4)
    eventually(lambda: agents.loops["n4"][0].ready.is_set(), within=5)
    for name in ("n1", "n2", "n3"):
        eventually(partial(agents.matches_store, name), within=1.0)
    assert unreachable_pairs([cluster.pods[0], cluster.pods[-1]]) == []

    agents.stop("n4")
    source.delete("n4")
    for name in ("n1", "n2", "n3"):
        eventually(partial(agents.matches_store, name), within=1.0)


def test_a_node_deleted_while_an_agent_is_down_is_cleaned_up_on_start(agents) -> None:
    source, cluster = agents.source, agents.cluster
    for node in cluster.nodes:
        source.put(node.name, pod_cidrs=[str(pod_cidr(node))])
        agents.start(node)
    for node in cluster.nodes:
        eventually(partial(agents.matches_store, node.name), within=5)

    agents.stop("n1")
    agents.stop("n3")
    source.delete("n3")
    agents.start(cluster.nodes[0])
    eventually(lambda: agents.matches_store("n1"), within=5)
    eventually(lambda: agents.matches_store("n2"), within=1)


def test_a_broken_watch_is_replaced_by_a_fresh_list(agents) -> None:
    source, cluster = agents.source, agents.cluster
    for node in cluster.nodes[:2]:
        source.put(node.name, pod_cidrs=[str(pod_cidr(node))])
        agents.start(node)
    for node in cluster.nodes[:2]:
        eventually(partial(agents.matches_store, node.name), within=5)
    source.break_watches = 2
    n3 = cluster.nodes[2]
    source.put(n3.name, pod_cidrs=[str(pod_cidr(n3))])
    agents.start(n3)
    for node in cluster.nodes:
        eventually(partial(agents.matches_store, node.name), within=5)
