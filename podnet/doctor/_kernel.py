"""The node's kernel state against what the files and the Node objects say: cni0's
address, the MTUs along a pod's path, the masquerade table, the routes, neighbours and FDB
entries towards the other nodes."""

from __future__ import annotations

from collections.abc import Sequence
from ipaddress import IPv4Interface, IPv4Network, IPv6Interface

from podnet.agent import (
    ENCAP_OVERHEAD,
    HostGwBackend,
    Lease,
    LeaseError,
    Reconciler,
    RtnlTables,
    VxlanBackend,
    VxlanDevice,
    lease_from_node,
    masq_counters,
    plan,
)
from podnet.doctor._facts import Facts
from podnet.doctor._finding import SKIPPED, Finding, ok, problem
from podnet.netlink import (
    FdbEntry,
    GatewayRoute,
    Link,
    Neighbour,
    Rtnl,
    delete_address,
    find_link,
    find_link_by_index,
    is_netns,
    list_addresses,
    list_links,
    read_vxlan,
)
from podnet.runtime import ResultCache


def check_bridge_address(facts: Facts, rtnl: Rtnl) -> list[Finding]:
    """The reference bridge plugin fails every ADD with '"cni0" already has an IP address
    different from ...' when the bridge keeps an address of an older podCIDR."""
    name = facts.bridge
    want = facts.pod_cidr or (facts.subnet_env.subnet if facts.subnet_env else None)
    if not isinstance(want, IPv4Network):
        return [Finding("bridge", SKIPPED, f"{name}: no podCIDR known to check it against")]
    bridge = _link_named(rtnl, name)
    if bridge is None:
        return [ok("bridge", f"{name} does not exist yet: the first pod's ADD creates it")]
    addresses = [a.address for a in list_addresses(rtnl, bridge.index, version=4)]
    stale = [a for a in addresses if isinstance(a, IPv4Interface) and a.network != want]
    if not stale:
        shown = ", ".join(str(a) for a in addresses) or "no address yet"
        return [ok("bridge", f"{name} has {shown}, within {want}")]
    gateway = IPv4Interface(f"{want.network_address + 1}/{want.prefixlen}")
    users = _pods_in(facts, stale)
    evidence = (f"{name}: {_join(addresses)}", *(f"pod {who} uses {ip}" for who, ip in users))
    message = (
        f'"{name}" already has an IP address different from {gateway}: '
        "the bridge plugin fails every pod"
    )
    if users:
        return [
            problem(
                "bridge",
                message,
                evidence=evidence,
                fix=f"{len(users)} pod(s) still use the old range through {name}: delete "
                f"them, then run doctor --fix to drop {_join(stale)}",
            )
        ]

    def drop_stale() -> str:
        for address in stale:
            delete_address(rtnl, bridge.index, address)
        return f"removed {_join(stale)} from {name}"

    return [
        problem(
            "bridge",
            message,
            evidence=evidence,
            fix=f"remove {_join(stale)} from {name}: no pod uses that range",
            repair=drop_stale,
        )
    ]


def _pods_in(facts: Facts, ranges: list[IPv4Interface]) -> list[tuple[str, str]]:
    """The attachments of live pods (cached results, netns alive) with an address in one
    of `ranges`: they route through the bridge's address there."""
    found = []
    for attachment in ResultCache(facts.config.cni_data_dir).attachments():
        if not attachment.netns or not is_netns(attachment.netns):
            continue
        for ip in (attachment.result or {}).get("ips") or []:
            try:
                address = IPv4Interface(str(ip.get("address", "")))
            except ValueError:
                continue  # IPv6, or not an address
            if any(address.ip in r.network for r in ranges):
                found.append((f"{attachment.container_id[:12]} {attachment.ifname}", str(address)))
    return found


def check_mtu(facts: Facts, rtnl: Rtnl) -> list[Finding]:
    env = facts.subnet_env
    if env is None:
        return [Finding("mtu", SKIPPED, "no subnet.env to read FLANNEL_MTU from")]
    links = list_links(rtnl)
    by_index = {link.index: link for link in links}
    evidence: list[str] = [f"FLANNEL_MTU={env.mtu}"]
    wrong: list[str] = []
    overlay = next((k for k in links if k.kind == "vxlan" and k.name.startswith("flannel.")), None)
    if overlay is not None:
        evidence.append(f"{overlay.name} {overlay.mtu}")
        underlay = _underlay_of(rtnl, overlay, by_index)
        if underlay is not None:
            evidence.append(f"{underlay.name} {underlay.mtu}")
            if overlay.mtu + ENCAP_OVERHEAD > underlay.mtu:
                wrong.append(
                    f"{overlay.name} MTU {overlay.mtu} + {ENCAP_OVERHEAD} bytes of VXLAN "
                    f"exceeds {underlay.name}'s {underlay.mtu}"
                )
        if env.mtu > overlay.mtu:
            wrong.append(f"FLANNEL_MTU {env.mtu} exceeds {overlay.name}'s {overlay.mtu}")
    bridge = _link_named(rtnl, facts.bridge)
    if bridge is not None:
        evidence.append(f"{bridge.name} {bridge.mtu}")
        for port in list_links(rtnl, master=bridge.index):
            if port.mtu > env.mtu:
                wrong.append(f"pod interface {port.name} has MTU {port.mtu} > {env.mtu}")
    if wrong:
        return [
            problem(
                "mtu",
                "MTU mismatch: packets larger than the path allows are dropped between nodes",
                evidence=(*wrong, "; ".join(evidence)),
                fix="set the backend's MTU (net-conf.json Backend.MTU) or the underlay's, "
                "restart the agent so it rewrites subnet.env, then recreate the pods",
            )
        ]
    return [ok("mtu", "MTUs agree along the pod path", "; ".join(evidence))]


def check_masquerade(facts: Facts) -> list[Finding]:
    env = facts.subnet_env
    if env is None or not env.ipmasq:
        return [Finding("masquerade", SKIPPED, "FLANNEL_IPMASQ is not true")]
    counters = masq_counters(None)
    if not counters:
        return [
            problem(
                "masquerade",
                "FLANNEL_IPMASQ=true but the agent's nftables table (ip podnet-agent) is "
                "missing: pods cannot reach addresses outside the cluster",
                fix="restart the node agent: it writes the table when it starts",
            )
        ]
    return [ok("masquerade", f"ip podnet-agent has {len(counters)} rules")]


def check_peers(facts: Facts, rtnl: Rtnl) -> list[Finding]:
    """Routes, neighbours and FDB entries towards every other node, as the agent's own
    backend would program them from the Node objects."""
    if not facts.nodes:
        why = facts.api_error or "no --kubeconfig: the Node objects are not known"
        return [Finding("peers", SKIPPED, why)]
    leases, bad = _leases(facts)
    own = next((lease for lease in leases if lease.node == facts.config.node_name), None)
    if own is None:
        return [Finding("peers", SKIPPED, f"node {facts.config.node_name} has no lease yet")]
    backend = _backend_of(own, rtnl)
    if backend is None:
        return [Finding("peers", SKIPPED, f"the {own.backend_type} device is not set up")]
    others = [lease for lease in leases if lease.node != own.node]
    reconciler = Reconciler(RtnlTables(rtnl), backend)
    todo = plan(reconciler.wanted(others), reconciler.kernel.read(backend.owned_devices))
    evidence = [f"node {name}: {why}" for name, why in bad]
    Entry = GatewayRoute | Neighbour | FdbEntry
    missing: list[Entry] = [*todo.replace_routes, *todo.replace_neighbours, *todo.replace_fdb]
    stale: list[Entry] = [*todo.delete_routes, *todo.delete_neighbours, *todo.delete_fdb]
    if not todo:
        return [ok("peers", f"entries for {len(others)} other node(s) in place", *evidence)]
    names = {link.index: link.name for link in list_links(rtnl)}
    evidence += [f"missing: {_entry(entry, names)}" for entry in missing]
    evidence += [f"for no node: {_entry(entry, names)}" for entry in stale]

    def reprogram() -> str:
        outcome = reconciler.reconcile(others)
        errors = "; ".join(str(e) for e in outcome.errors)
        done = f"added {len(missing)} and removed {len(stale)} entries"
        return f"{done} (errors: {errors})" if errors else done

    return [
        problem(
            "peers",
            f"{len(missing)} entries towards other nodes missing, {len(stale)} left for "
            "nodes that no longer exist",
            evidence=tuple(evidence),
            fix="program them as the agent would (doctor --fix), and read the agent's log: "
            "it should have done so",
            repair=reprogram,
        )
    ]


def _leases(facts: Facts) -> tuple[list[Lease], list[tuple[str, str]]]:
    leases, bad = [], []
    for node in facts.nodes:
        meta, spec = node.get("metadata") or {}, node.get("spec") or {}
        name = str(meta.get("name", ""))
        try:
            lease = lease_from_node(
                name,
                pod_cidr=spec.get("podCIDR"),
                pod_cidrs=spec.get("podCIDRs") or (),
                annotations=meta.get("annotations") or {},
            )
        except LeaseError as exc:
            bad.append((name, str(exc)))
            continue
        if lease is not None:
            leases.append(lease)
    return leases, bad


def _backend_of(own: Lease, rtnl: Rtnl) -> VxlanBackend | HostGwBackend | None:
    if own.backend_type == "vxlan" and own.backend_data is not None:
        device = _link_named(rtnl, f"flannel.{own.backend_data.vni}")
        if device is None:
            return None
        v4 = VxlanDevice(device.index, device.mtu, own.backend_data)
        v6 = None
        if own.backend_v6_data is not None:
            v6_link = _link_named(rtnl, f"flannel-v6.{own.backend_v6_data.vni}")
            if v6_link is not None:
                v6 = VxlanDevice(v6_link.index, v6_link.mtu, own.backend_v6_data)
        return VxlanBackend(v4, v6, _no_direct_routing)
    if own.backend_type == "host-gw":
        underlay = _link_with_address(rtnl, own)
        if underlay is None:
            return None
        return HostGwBackend(underlay.index, underlay.mtu, ipv6=own.ipv6_subnet is not None)
    return None


def _no_direct_routing(_peer: object) -> int | None:
    return None


def _link_with_address(rtnl: Rtnl, own: Lease) -> Link | None:
    for address in list_addresses(rtnl, version=4):
        if address.address.ip == own.public_ip:
            return find_link_by_index(rtnl, address.index)
    return None


def _underlay_of(rtnl: Rtnl, overlay: Link, by_index: dict[int, Link]) -> Link | None:
    attrs = read_vxlan(rtnl, overlay.name)
    if attrs is None or attrs.underlay_index is None:
        return None
    return by_index.get(attrs.underlay_index)


def _link_named(rtnl: Rtnl, name: str) -> Link | None:
    return find_link(rtnl, name)


def _entry(entry: GatewayRoute | Neighbour | FdbEntry, names: dict[int, str]) -> str:
    """As `ip route`/`ip neigh`/`bridge fdb` print them."""
    dev = names.get(entry.ifindex, f"#{entry.ifindex}")
    if isinstance(entry, GatewayRoute):
        return f"route {entry.dst} via {entry.gateway} dev {dev}" + (" onlink" * entry.onlink)
    if isinstance(entry, Neighbour):
        return f"neighbour {entry.ip} lladdr {entry.mac} dev {dev}"
    return f"fdb {entry.mac} dst {entry.dst} dev {dev}"


def _join(items: Sequence[IPv4Interface | IPv6Interface]) -> str:
    return ", ".join(str(item) for item in items)
