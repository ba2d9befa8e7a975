"""The agent's run loop: node objects in, kernel state and annotations out.

It needs only a few things from the cluster, stated as the `NodeSource` Protocol below
(the Kubernetes API through podnet.agent._kube_source, or podnet's store directly):
    - list the nodes, with the (opaque) version the list was taken at;
    - watch node changes after that version;
    - merge annotations into this node's object, and report the node's network up.
In order, like flanneld with the kube subnet manager:
    1. wait until this node has a podCIDR (list, then watch: no polling; logging why it
       waits, so a missing nodeipam controller is obvious), 2. set the node network up
       (backend, rules, subnet.env), 3. publish this node's lease as annotations, 4. list
       every node's lease and reconcile, report the network up, then ready,
    5. follow the watch, applying each batch, and reconcile every `resync` seconds.
A watch that breaks (server restarted, history compacted: 410) is replaced by a fresh
list, which goes through the same reconcile: nothing is missed, nothing stale survives.
Failures to list or watch are retried with an exponential back-off.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network
from typing import Protocol, TypeAlias

from podnet.agent._config import NetworkConfig
from podnet.agent._lease import Lease, LeaseError, lease_from_node, pod_cidrs_by_family
from podnet.agent._node import NodeNetwork, NodeSettings
from podnet.agent._watcher import LeaseEvent, added, removed

log = logging.getLogger("podnet.agent")

DEFAULT_RESYNC = 10.0  # seconds between full reconciles (flannel's routeCheck period)

# A node's IPv4 and IPv6 podCIDR (either may be None)
PodCIDRs: TypeAlias = tuple[IPv4Network | None, IPv6Network | None]


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


class NodeWatch(Protocol):
    def get(self, timeout: float | None = None) -> Sequence[NodeChange]:
        """The changes that arrived (maybe none) within `timeout`; raises when the watch
        can no longer continue (the loop then lists again)."""
        ...

    def close(self) -> None: ...


class NodeSource(Protocol):
    def list_nodes(self) -> tuple[Sequence[NodeObject], str]:
        """Every node, and the version the list was taken at (opaque to the loop)."""
        ...

    def watch_nodes(self, after: str) -> NodeWatch:
        """The changes after the version a list returned."""
        ...

    def annotate_node(self, name: str, annotations: Mapping[str, str]) -> None:
        """Merge `annotations` into the node's (retrying on write conflicts)."""
        ...

    def report_network_up(self, name: str) -> None:
        """Tell the cluster this node's network is up (Kubernetes: NetworkUnavailable)."""
        ...


@dataclass(frozen=True)
class AgentSettings:
    node: str
    underlay: str
    subnet_file: str
    # the underlay's address (the VXLAN device's local one) and the one published (flannel's
    # --public-ip); None: the underlay's first IPv4 address
    underlay_ip: IPv4Address | None = None
    public_ip: IPv4Address | None = None
    # the same for IPv6 (--public-ipv6); None: the underlay's first global IPv6 address
    underlay_ipv6: IPv6Address | None = None
    public_ipv6: IPv6Address | None = None
    ip_masq: bool = True
    netns: str | None = None
    resync: float = DEFAULT_RESYNC
    poll: float = 0.5  # the longest a wait on the watch lasts (a stop is seen by then)
    backoff_max: float = 10.0  # the longest wait before listing again after failures
    waiting_log: float = 10.0  # seconds between "no podCIDR yet" lines


class Backoff:
    """Exponential delays between retries: `first`, doubling up to `most`; reset by a success."""

    def __init__(self, first: float, most: float) -> None:
        self.first, self.most = first, max(first, most)
        self._next = first

    def delay(self) -> float:
        current = self._next
        self._next = min(self.most, current * 2)
        return current

    def reset(self) -> None:
        self._next = self.first


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
        self._backoff = Backoff(settings.poll, settings.backoff_max)
        self._reported_up = False

    @property
    def peer_count(self) -> int:
        """How many other nodes' leases the kernel is programmed for."""
        return sum(1 for name in self._by_node if name != self.settings.node)

    def wait_for_pod_cidr(self, stop: threading.Event) -> PodCIDRs:
        """This node's podCIDR of every enabled family: listed, else awaited on a watch of
        the nodes."""
        name = self.settings.node
        next_log = self.clock()
        while not stop.is_set():
            try:
                nodes, version = self.source.list_nodes()
                subnets = self._pod_cidrs_of(name, nodes)
                if subnets is not None:
                    return subnets
                watch = self.source.watch_nodes(version)
            except Exception as exc:  # the source's own errors: retry, slower each time
                log.warning("cannot list or watch nodes (%s); retrying", exc)
                stop.wait(self._backoff.delay())
                continue
            self._backoff.reset()
            try:
                while not stop.is_set():
                    if self.clock() >= next_log:
                        log.info(
                            "node %s has no podCIDR yet: is the nodeipam controller running?",
                            name,
                        )
                        next_log = self.clock() + self.settings.waiting_log
                    changes = watch.get(timeout=self.settings.poll)
                    latest = [c.node for c in changes if c.name == name and c.node is not None]
                    subnets = self._pod_cidrs_of(name, latest[-1:])
                    if subnets is not None:
                        return subnets
            except Exception as exc:
                log.warning("node watch ended (%s); listing again", exc)
                stop.wait(self._backoff.delay())
            finally:
                watch.close()
        raise Stopped(f"stopped while waiting for the podCIDR of node {name}")

    def start(self, stop: threading.Event) -> NodeNetwork:
        subnet, ipv6_subnet = self.wait_for_pod_cidr(stop)
        s = self.settings
        network = NodeNetwork.start(
            NodeSettings(
                node=s.node,
                subnet=subnet,
                underlay=s.underlay,
                subnet_file=s.subnet_file,
                ip_masq=s.ip_masq,
                netns=s.netns,
                underlay_ip=s.underlay_ip,
                public_ip=s.public_ip,
                ipv6_subnet=ipv6_subnet,
                underlay_ipv6=s.underlay_ipv6,
                public_ipv6=s.public_ipv6,
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
        """List, then watch from the list's version until the watch breaks or `stop`."""
        assert self.network is not None
        # Errors are the source's types; this layer only needs "it failed, retry".
        try:
            nodes, version = self.source.list_nodes()
            watch = self.source.watch_nodes(version)
        except Exception as exc:
            log.warning("cannot list or watch nodes (%s); retrying", exc)
            stop.wait(self._backoff.delay())
            return
        try:
            self.apply_snapshot(nodes)
            self._report_up()
            self.ready.set()
            started = self.clock()
            next_resync = started + self.settings.resync
            while not stop.is_set():
                timeout = max(0.0, min(self.settings.poll, next_resync - self.clock()))
                try:
                    changes = watch.get(timeout=timeout)
                except Exception as exc:
                    log.warning("node watch ended (%s); listing again", exc)
                    # A watch that lasted a while is normal wear; one that keeps failing
                    # right away is not, and is retried ever more slowly.
                    if self.clock() - started >= self.settings.resync:
                        self._backoff.reset()
                    stop.wait(self._backoff.delay())
                    return
                if changes:
                    outcome = self.network.on_events(self.events_for(changes))
                    if outcome.changes:
                        log.info("applied %d kernel entries", outcome.changes)
                if self.clock() >= next_resync:
                    self.network.reconcile()
                    self._report_up()
                    next_resync = self.clock() + self.settings.resync
        except OSError as exc:  # the kernel refused a read: start over from a fresh list
            log.warning("updating the kernel failed (%s); listing again", exc)
            stop.wait(self.settings.poll)
        finally:
            watch.close()

    def _report_up(self) -> None:
        """Report the network up once; a failure is retried at the next resync."""
        if self._reported_up:
            return
        try:
            self.source.report_network_up(self.settings.node)
            self._reported_up = True
        except Exception as exc:
            log.warning("cannot report the network of node %s up (%s)", self.settings.node, exc)

    def _pod_cidrs_of(self, name: str, nodes: Sequence[NodeObject]) -> PodCIDRs | None:
        """The node's podCIDRs once it has one of every enabled family (a dual-stack
        config waits for both, as flannel's lease needs both); None before."""
        for node in nodes:
            if node.name != name:
                continue
            v4, v6 = pod_cidrs_by_family(None, node.pod_cidrs)
            if (v4 is None and self.config.enable_ipv4) or (v6 is None and self.config.enable_ipv6):
                if v4 is not None or v6 is not None:
                    log.warning(
                        "node %s's podCIDRs %s lack a family the network config enables",
                        name,
                        list(node.pod_cidrs),
                    )
                return None
            return (
                v4 if self.config.enable_ipv4 else None,
                v6 if self.config.enable_ipv6 else None,
            )
        return None
