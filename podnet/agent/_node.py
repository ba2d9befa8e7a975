"""One node's overlay, everything but the store: the agent loop feeds it leases.

Start-up follows flanneld's order, so that subnet.env (which tells the CNI plugin, and the
runtime, that networking is ready) appears only once the node can actually carry traffic:
    1. set up the backend (the vxlan device with this node's stable MAC, or nothing);
    2. install the masquerade and forward rules;
    3. write subnet.env atomically.
Then every snapshot or batch of lease events goes through the pure LeaseWatcher into the
Reconciler, and `reconcile()` (on start and periodically) repairs the kernel tables.
Restarting keeps pods reachable: the device, its MAC and the entries are reused, replaced
in place, never flushed.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network
from types import TracebackType

from podnet.agent._backend import Backend, LocalNode, public_address, public_address_v6
from podnet.agent._config import NetworkConfig
from podnet.agent._kernel import ROUTE_PROTO, RtnlTables
from podnet.agent._lease import Lease
from podnet.agent._masq import (
    MasqueradeError,
    apply_ruleset,
    ensure_ruleset,
    render_ruleset,
)
from podnet.agent._reconcile import Outcome, Reconciler
from podnet.agent._registry import setup_backend
from podnet.agent._subnet_env import write_subnet_env
from podnet.agent._watcher import LeaseEvent, LeaseWatcher
from podnet.netlink import Rtnl, find_link_by_index

log = logging.getLogger("podnet.agent")


@dataclass(frozen=True)
class NodeSettings:
    node: str
    subnet: IPv4Network | None  # the node's IPv4 podCIDR (None: IPv6 only)
    underlay: str  # interface facing the other nodes (flannel's --iface)
    subnet_file: str
    ip_masq: bool = True
    netns: str | None = None  # the node's namespace (lab); None: the agent's own
    # the underlay's address and the published one (podnet.agent._iface chose them);
    # None: the underlay's first IPv4 address
    underlay_ip: IPv4Address | None = None
    public_ip: IPv4Address | None = None
    ipv6_subnet: IPv6Network | None = None  # the node's IPv6 podCIDR (EnableIPv6)
    # the same for IPv6; None: the underlay's first global IPv6 address
    underlay_ipv6: IPv6Address | None = None
    public_ipv6: IPv6Address | None = None

    def check_subnets(self, config: NetworkConfig) -> None:
        """Each enabled family's podCIDR is there and inside its cluster network (flannel:
        "subnet ... specified in the flannel net config doesn't contain ... PodCIDR")."""
        families = (
            (config.enable_ipv4, self.subnet, config.network, "IPv4"),
            (config.enable_ipv6, self.ipv6_subnet, config.ipv6_network, "IPv6"),
        )
        for enabled, subnet, network, name in families:
            if not enabled:
                continue
            if subnet is None:
                raise ValueError(f"node {self.node} has no {name} podCIDR ({name} is enabled)")
            if network is None or not subnet.subnet_of(network):  # type: ignore[arg-type]
                raise ValueError(
                    f"subnet {subnet} of node {self.node} is not inside "
                    f"the cluster network {network}"
                )


class NodeNetwork:
    def __init__(
        self,
        settings: NodeSettings,
        config: NetworkConfig,
        *,
        rtnl: Rtnl,
        local: LocalNode,
        backend: Backend,
    ) -> None:
        self.settings = settings
        self.config = config
        self.rtnl = rtnl
        self.local = local
        self.backend = backend
        # the key of this node's own lease (Lease.key), of the families the config enables
        own = local.subnet or local.ipv6_subnet
        assert own is not None  # check_subnets made sure of one
        self.watcher = LeaseWatcher(own)
        self.reconciler = Reconciler(RtnlTables(rtnl, proto=ROUTE_PROTO), backend)

    @classmethod
    def start(cls, settings: NodeSettings, config: NetworkConfig) -> NodeNetwork:
        settings.check_subnets(config)
        rtnl = Rtnl.open(settings.netns)
        try:
            v4, v6 = config.enable_ipv4, config.enable_ipv6
            underlay_ip = underlay_ipv6 = None
            if v4:
                underlay_ip = settings.underlay_ip or public_address(rtnl, settings.underlay)
            if v6:
                underlay_ipv6 = settings.underlay_ipv6 or public_address_v6(rtnl, settings.underlay)
            local = LocalNode(
                settings.node,
                settings.subnet if v4 else None,
                settings.underlay,
                (settings.public_ip or underlay_ip) if v4 else None,
                underlay_ip,
                ipv6_subnet=settings.ipv6_subnet if v6 else None,
                public_ipv6=(settings.public_ipv6 or underlay_ipv6) if v6 else None,
                underlay_ipv6=underlay_ipv6,
            )
            backend = setup_backend(rtnl, config, local)
            apply_ruleset(settings.netns, _ruleset(settings, config))
            write_subnet_env(
                settings.subnet_file,
                config,
                subnet=local.subnet,
                mtu=backend.mtu,
                ip_masq=settings.ip_masq,
                ipv6_subnet=local.ipv6_subnet,
            )
        except BaseException:
            rtnl.close()
            raise
        return cls(settings, config, rtnl=rtnl, local=local, backend=backend)

    @property
    def lease(self) -> Lease:
        """This node's own lease, as the other nodes must see it (publish its annotations)."""
        return Lease(
            node=self.local.name,
            subnet=self.local.subnet,
            public_ip=self.local.public_ip,
            backend_type=self.backend.type,
            backend_data=self.backend.backend_data,
            ipv6_subnet=self.local.ipv6_subnet,
            public_ipv6=self.local.public_ipv6,
            backend_v6_data=self.backend.backend_v6_data,
        )

    def on_snapshot(self, leases: Iterable[Lease]) -> Outcome:
        """A full list of leases (start, or a watch that fell behind): remember it, and
        then make the kernel match the whole list (which also removes the entries of nodes
        that left while nobody was watching)."""
        self.watcher.reset(leases)
        return self.reconcile()

    def on_events(self, events: Iterable[LeaseEvent]) -> Outcome:
        batch = self.watcher.update(events)
        return self.reconciler.apply_batch(batch, self.watcher.leases)

    def reconcile(self) -> Outcome:
        """Repair the kernel against the known leases; a backend device someone deleted is
        created again first (same name and MAC, so the other nodes' entries stay valid),
        and masquerade and forward rules someone removed are put back."""
        try:
            if ensure_ruleset(self.settings.netns, _ruleset(self.settings, self.config)):
                log.warning("masquerade or forward rules were missing; applied them again")
        except MasqueradeError as exc:  # the routes are still worth repairing
            log.warning("cannot check the masquerade rules: %s", exc)
        missing = [
            d for d in self.backend.owned_devices if find_link_by_index(self.rtnl, d) is None
        ]
        if missing:
            log.warning("backend device #%d disappeared; creating it again", missing[0])
            self.backend = setup_backend(self.rtnl, self.config, self.local)
            self.reconciler = Reconciler(RtnlTables(self.rtnl, proto=ROUTE_PROTO), self.backend)
        return self.reconciler.reconcile(self.watcher.leases)

    def close(self) -> None:
        self.rtnl.close()

    def __enter__(self) -> NodeNetwork:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _ruleset(settings: NodeSettings, config: NetworkConfig) -> str:
    v4, v6 = config.enable_ipv4, config.enable_ipv6
    return render_ruleset(
        config.network if v4 else None,
        settings.subnet if v4 else None,
        masquerade=settings.ip_masq,
        ipv6_network=config.ipv6_network if v6 else None,
        ipv6_subnet=settings.ipv6_subnet if v6 else None,
    )
