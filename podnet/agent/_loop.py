"""The agent's run loop: node objects in, kernel state and annotations out.

It needs only three things from the cluster store, stated as the `NodeSource` Protocol
below (the store's node API satisfies it through a thin adapter):
    - list the nodes, with the revision the list was taken at;
    - watch node changes from a revision on;
    - merge annotations into this node's object.
In order, like flanneld with the kube subnet manager:
    1. wait until this node has a podCIDR (logging why, so a missing nodeipam controller
       is obvious), 2. set the node network up (backend, rules, subnet.env), 3. publish this
       node's lease as annotations, 4. list every node's lease and reconcile, then ready,
    5. follow the watch, applying each batch, and reconcile every `resync` seconds.
A watch that breaks (store restarted, history compacted) is replaced by a fresh list,
which goes through the same reconcile: nothing is missed, nothing stale survives.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Network
from typing import Protocol

from podnet.agent._config import NetworkConfig
from podnet.agent._lease import Lease, LeaseError, ipv4_pod_cidr, lease_from_node
from podnet.agent._node import NodeNetwork, NodeSettings
from podnet.agent._watcher import LeaseEvent, added, removed

log = logging.getLogger("podnet.agent")

DEFAULT_RESYNC = 10.0  # seconds between full reconciles (flannel's routeCheck period)


class NodeObject(Protocol):
    """The parts of a Node object the agent reads."""

    @property
    def name(self) -> str: ...
    @property
    def pod_cidrs(self) -> Sequence[str]: ...
    @property
    def annotations(self) -> Mapping[str, str]: ...


class NodeChange(Protocol):
    """A watched change: `node` is None when the node was deleted."""

    @property
    def name(self) -> str: ...
    @property
    def node(self) -> NodeObject | None: ...
    @property
    def revision(self) -> int: ...


class NodeWatch(Protocol):
    def get(self, timeout: float | None = None) -> Sequence[NodeChange]:
        """The changes that arrived (maybe none) within `timeout`; raises when the watch
        can no longer continue (the loop then lists again)."""
        ...

    def close(self) -> None: ...


class NodeSource(Protocol):
    def list_nodes(self) -> tuple[Sequence[NodeObject], int]: ...
    def watch_nodes(self, from_revision: int) -> NodeWatch: ...
    def get_node(self, name: str) -> NodeObject | None: ...
    def annotate_node(self, name: str, annotations: Mapping[str, str]) -> None:
        """Merge `annotations` into the node's (retrying on write conflicts)."""
        ...


@dataclass(frozen=True)
class AgentSettings:
    node: str
    underlay: str
    subnet_file: str
    ip_masq: bool = True
    netns: str | None = None
    resync: float = DEFAULT_RESYNC
    poll: float = 0.5  # how often to look for a podCIDR while there is none


class Stopped(Exception):
    """The stop event was set before the agent was up."""


def lease_of(node: NodeObject) -> Lease | None:
    """The lease a node object publishes; a malformed one is logged and ignored."""
    try:
        return lease_from_node(
            node.name, pod_cidr=None, pod_cidrs=node.pod_cidrs, annotations=node.annotations
        )
    except LeaseError as exc:
        log.warning("ignoring the lease of node %s: %s", node.name, exc)
        return None


class AgentLoop:
    def __init__(
        self,
        source: NodeSource,
        config: NetworkConfig,
        settings: AgentSettings,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.source = source
        self.config = config
        self.settings = settings
        self.clock = clock
        self.ready = threading.Event()
        self.network: NodeNetwork | None = None
        self._by_node: dict[str, Lease] = {}

    @property
    def peer_count(self) -> int:
        """How many other nodes' leases the kernel is programmed for."""
        return sum(1 for name in self._by_node if name != self.settings.node)

    def wait_for_pod_cidr(self, stop: threading.Event) -> IPv4Network:
        name = self.settings.node
        while True:
            node = self.source.get_node(name)
            subnet = ipv4_pod_cidr(None, node.pod_cidrs) if node is not None else None
            if subnet is not None:
                return subnet
            log.info("node %s has no podCIDR yet: is the nodeipam controller running?", name)
            if stop.wait(self.settings.poll):
                raise Stopped(f"stopped while waiting for the podCIDR of node {name}")

    def start(self, stop: threading.Event) -> NodeNetwork:
        subnet = self.wait_for_pod_cidr(stop)
        s = self.settings
        network = NodeNetwork.start(
            NodeSettings(
                node=s.node,
                subnet=subnet,
                underlay=s.underlay,
                subnet_file=s.subnet_file,
                ip_masq=s.ip_masq,
                netns=s.netns,
            ),
            self.config,
        )
        self.network = network
        self.source.annotate_node(s.node, network.lease.annotations())
        return network

    def apply_snapshot(self, nodes: Sequence[NodeObject]) -> None:
        """Every node's lease as listed: make the kernel match the whole list."""
        assert self.network is not None
        self._by_node = {}
        for node in nodes:
            lease = lease_of(node)
            if lease is not None:
                self._by_node[node.name] = lease
        outcome = self.network.on_snapshot(self._by_node.values())
        if outcome.changes:
            log.info("reconciled %d kernel entries against %d leases", outcome.changes, len(nodes))

    def events_for(self, changes: Sequence[NodeChange]) -> list[LeaseEvent]:
        """Lease events for node changes (a node whose lease disappears is removed)."""
        events = []
        for change in changes:
            old = self._by_node.pop(change.name, None)
            lease = lease_of(change.node) if change.node is not None else None
            if lease is not None:
                self._by_node[change.name] = lease
                events.append(added(lease))
            elif old is not None:
                events.append(removed(old))
        return events

    def run(self, stop: threading.Event) -> None:
        """Start, then follow the store until `stop` is set. Closes the node network (but
        leaves the kernel state in place: pods stay reachable while the agent is away)."""
        network = self.network or self.start(stop)
        try:
            while not stop.is_set():
                self._follow(stop)
        finally:
            network.close()

    def _follow(self, stop: threading.Event) -> None:
        """List, then watch from the list's revision until the watch breaks or `stop`."""
        assert self.network is not None
        # Store errors are the store's types; this layer only needs "it failed, retry".
        try:
            nodes, revision = self.source.list_nodes()
            watch = self.source.watch_nodes(revision + 1)
        except Exception as exc:
            log.warning("cannot list or watch nodes (%s); retrying", exc)
            stop.wait(self.settings.poll)
            return
        try:
            self.apply_snapshot(nodes)
            self.ready.set()
            next_resync = self.clock() + self.settings.resync
            while not stop.is_set():
                timeout = max(0.0, min(self.settings.poll, next_resync - self.clock()))
                try:
                    changes = watch.get(timeout=timeout)
                except Exception as exc:
                    log.warning("node watch ended (%s); listing again", exc)
                    return
                if changes:
                    outcome = self.network.on_events(self.events_for(changes))
                    if outcome.changes:
                        log.info("applied %d kernel entries", outcome.changes)
                if self.clock() >= next_resync:
                    self.network.reconcile()
                    next_resync = self.clock() + self.settings.resync
        except OSError as exc:  # the kernel refused a read: start over from a fresh list
            log.warning("updating the kernel failed (%s); listing again", exc)
            stop.wait(self.settings.poll)
        finally:
            watch.close()
