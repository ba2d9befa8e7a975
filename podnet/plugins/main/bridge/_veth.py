"""The veth pair of a pod: created in the node's namespace with its peer born in the
pod's (no move, no rename), the node end up and attached to the bridge in that same
request; then the port flags."""

from __future__ import annotations

import errno
import os
import time

from podnet.cni import CNIError
from podnet.netlink import (
    OWN_NETNS,
    Link,
    NetlinkError,
    Rtnl,
    add_port_vlan,
    create_veth,
    delete_port_vlan,
    find_link,
    get_link,
    port_vlans,
    set_bridge_port,
    set_link,
    set_sysctls,
)
from podnet.plugins.main.bridge._config import BridgeConfig

_NAME_ATTEMPTS = 10
# How long to wait for the node end to come up, as the reference: 0, 50, 500, 1000, 1000 ms.
_PORT_UP_WAITS = (0.0, 0.05, 0.5, 1.0, 1.0)


def random_veth_name() -> str:
    return "veth" + os.urandom(4).hex()


def create_pair(
    node: Rtnl,
    inner: Rtnl,
    ifname: str,
    *,
    mtu: int,
    mac: str,
    inner_label: str,
    master: int = 0,
) -> tuple[Link, Link]:
    """A veth called `ifname` in the namespace of `inner` (the pod's), its peer under a
    random name in the node's, up and, with `master`, attached to that bridge; returns
    (node end, inner end)."""
    for _ in range(_NAME_ATTEMPTS):
        host_name = random_veth_name()
        try:
            create_veth(
                node,
                host_name,
                peer_name=ifname,
                peer_netns=inner.netns or OWN_NETNS,  # a handle without a path: this thread's
                mtu=mtu,
                peer_mac=mac,
                up=True,
                master=master,
            )
        except NetlinkError as exc:
            if exc.errno != errno.EEXIST:
                raise CNIError(f"failed to make veth pair: {exc.strerror}") from exc
            if find_link(inner, ifname) is not None:
                raise CNIError(
                    f'container veth name "{ifname}" already exists in {inner_label}'
                ) from exc
            continue  # the random node-side name was taken: draw another
        set_sysctls({f"net/ipv6/conf/{host_name}/accept_ra": "0"}, best_effort=True)
        return get_link(node, host_name), get_link(inner, ifname)
    raise CNIError("failed to find a unique veth name")


def attach(node: Rtnl, host: Link, bridge: Link, config: BridgeConfig, *, vlan: int) -> None:
    """Make `host` a port of `bridge` (unless it was born one) with the configured port
    flags and VLAN."""
    try:
        if host.master != bridge.index:
            set_link(node, host.index, master=bridge.index)
    except NetlinkError as exc:
        raise CNIError(
            f"failed to connect {host.name!r} to bridge {bridge.name}: {exc.strerror}"
        ) from exc
    try:
        set_bridge_port(node, host.index, hairpin=config.hairpin, isolated=config.port_isolation)
    except NetlinkError as exc:
        raise CNIError(f"failed to set up port flags of {host.name}: {exc.strerror}") from exc
    if vlan:
        try:
            if not config.preserve_default_vlan:
                for vid in port_vlans(node, host.index):
                    delete_port_vlan(node, host.index, vid)
            add_port_vlan(node, host.index, vlan, pvid=True, untagged=True)
        except NetlinkError as exc:
            raise CNIError(
                f"failed to setup vlan tag on interface {host.name!r}: {exc.strerror}"
            ) from exc


def ensure_vlan_interface(node: Rtnl, bridge: Link, config: BridgeConfig) -> Link:
    """`<bridge>.<vlan>`: one end of a veth pair in the node whose other end is an
    untagged port of the VLAN on the bridge; the VLAN's gateway address lives on it."""
    name = f"{bridge.name}.{config.vlan}"
    existing = find_link(node, name)
    if existing is not None:
        return existing
    port, gateway = create_pair(node, node, name, mtu=bridge.mtu, mac="", inner_label="the node")
    attach(node, port, bridge, config, vlan=config.vlan)
    set_link(node, gateway.index, up=True)
    return get_link(node, name)


def wait_port_up(node: Rtnl, host: Link) -> Link:
    """The node end once it is operationally up (both ends up, carrier on)."""
    link = host
    for pause in _PORT_UP_WAITS:
        if pause:
            time.sleep(pause)
        link = get_link(node, host.name)
        if link.oper_state == "UP":
            return link
    raise CNIError(f"bridge port in error state: {link.oper_state}")
