"""The node side: the bridge itself, its gateway addresses, forwarding.

Beyond the reference:
- An existing bridge whose MTU differs from the configured one gets the configured MTU
  (the reference sets it only when it creates the bridge).
- A gateway address left from an older pod subnet (the node's podCIDR changed) is
  replaced when no pod is attached to the bridge any more, instead of failing every pod
  until someone deletes the bridge by hand. While pods are attached, they may still use
  the old subnet, so the error names them. This runs before the new pod's veth is
  attached, so a pod being added never counts as one holding the old subnet.
"""

from __future__ import annotations

import errno
import ipaddress

from podnet.cni import CNIError, log
from podnet.netlink import (
    Link,
    NetlinkError,
    Rtnl,
    add_address,
    create_bridge,
    delete_address,
    find_link,
    get_link,
    list_addresses,
    list_links,
    set_link,
    set_promisc,
    set_sysctls,
)
from podnet.plugins.main.bridge._config import BridgeConfig

IPInterface = ipaddress.IPv4Interface | ipaddress.IPv6Interface


def ensure_bridge(nl: Rtnl, config: BridgeConfig) -> Link:
    """The bridge, created if missing, up, with the configured MTU and promiscuity."""
    name = config.bridge
    try:
        bridge = find_link(nl, name)  # on every pod but a node's first, all there is to do
        if bridge is None:
            bridge = _create(nl, config)
        if bridge.kind != "bridge":
            raise CNIError(f'"{name}" already exists but is not a bridge')
        changed = False
        if config.promisc and not bridge.promisc:
            set_promisc(nl, bridge.index, True)
            changed = True
        if config.mtu and bridge.mtu != config.mtu:
            log(f"bridge {name}: MTU {bridge.mtu} -> {config.mtu}")
            set_link(nl, bridge.index, mtu=config.mtu)
            changed = True
        # the plugin owns the routes of this device, not router advertisements
        set_sysctls({f"net/ipv6/conf/{name}/accept_ra": "0"}, best_effort=True)
        if not bridge.admin_up:
            set_link(nl, bridge.index, up=True)
            changed = True
        return get_link(nl, name) if changed else bridge
    except CNIError as exc:
        raise CNIError(f"failed to create bridge {name!r}: {exc.msg}", exc.details) from exc
    except NetlinkError as exc:
        raise CNIError(f"failed to create bridge {name!r}: {exc.strerror}") from exc


def _create(nl: Rtnl, config: BridgeConfig) -> Link:
    name = config.bridge
    try:
        create_bridge(nl, name, mtu=config.mtu, vlan_filtering=config.vlan != 0)
    except NetlinkError as exc:
        if exc.errno == errno.EOPNOTSUPP and config.vlan:
            raise CNIError(
                f"could not add {name!r} with VLAN filtering: {exc.strerror}",
                "vlan needs a kernel built with CONFIG_BRIDGE_VLAN_FILTERING",
            ) from exc
        if exc.errno != errno.EEXIST:  # another pod's ADD may have created it just now
            raise CNIError(f"could not add {name!r}: {exc.strerror}") from exc
    return get_link(nl, name)


def attached_pods(nl: Rtnl, bridge: Link) -> list[str]:
    """Ports of the bridge that lead to a pod: veths whose peer is in another namespace."""
    return sorted(
        link.name
        for link in list_links(nl, master=bridge.index)
        if link.kind == "veth" and link.peer_in_other_netns
    )


def _conflicts(existing: list[IPInterface], gateway: IPInterface) -> list[IPInterface]:
    """Addresses that cannot stay next to `gateway`: any other IPv4 address (one subnet
    per bridge), or an IPv6 address whose subnet overlaps."""
    if gateway.version == 4:
        return [a for a in existing if a != gateway]
    return [a for a in existing if a != gateway and a.network.overlaps(gateway.network)]


def ensure_gateway_address(
    nl: Rtnl, device: Link, gateway: IPInterface, *, bridge: Link, force: bool
) -> None:
    """`gateway` on `device` (the bridge, or its VLAN interface)."""
    existing = [
        a.address for a in list_addresses(nl, device.index, version=gateway.version) if a.is_global
    ]
    if gateway in existing:
        return
    stale = _conflicts(existing, gateway)
    if stale and not force:
        pods = attached_pods(nl, bridge)
        if pods:
            old = ", ".join(str(a) for a in stale)
            raise CNIError(
                f'"{device.name}" already has an IP address different from {gateway}',
                f"{old} is from an older pod subnet and pods attached to {bridge.name} may "
                f"still use it: {', '.join(pods)}; delete those pods to move to {gateway}",
            )
        log(f"{device.name}: replacing stale gateway {', '.join(map(str, stale))} by {gateway}")
    for address in stale:
        delete_address(nl, device.index, address)  # a concurrent ADD may have removed it
    try:
        add_address(nl, device.index, gateway, nodad=True)
    except NetlinkError as exc:
        if exc.errno != errno.EEXIST:
            raise CNIError(f"could not add IP address to {device.name!r}: {exc.strerror}") from exc
    # Pin the bridge's MAC: otherwise it follows the lowest port MAC and changes as pods
    # come and go, and every pod's ARP entry for the gateway goes stale.
    set_link(nl, device.index, mac=get_link(nl, device.name).mac)


def enable_forwarding(versions: set[int]) -> None:
    keys = {4: "net/ipv4/ip_forward", 6: "net/ipv6/conf/all/forwarding"}
    try:
        # as the reference (ip.EnableIP4Forward): written only when not on already
        set_sysctls({keys[v]: "1" for v in sorted(versions)}, read_first=True)
    except OSError as exc:
        raise CNIError(f"failed to enable forwarding: {exc.strerror}") from exc
