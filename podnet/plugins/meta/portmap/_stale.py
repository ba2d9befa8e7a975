"""UDP conntrack entries a hostPort must not keep across a change of owner.

UDP has no handshake: conntrack keeps one entry per flow for as long as datagrams keep
coming, and the NAT verdict is taken once, on the first one. A client that sent to a
hostPort before it was mapped (answered by nobody, or by the node) or while another pod
held it would keep going there forever. As the reference (deletePortmapStaleConnections),
ADD deletes the entries of the family's UDP hostPorts once its rules are in. DEL (and GC)
does it too, which the reference does not: a pod that lost its hostPort would otherwise
keep receiving that flow, until the next pod mapping the port flushes it; there, only
the flows DNATed to the pod that left are deleted (their answers come from its address).
Failures are reported and ignored, as the reference's: the mapping itself is in place.
"""

from __future__ import annotations

import socket
from collections.abc import Iterable

from podnet.cni import log
from podnet.netlink import NetlinkError, delete_conntrack_entries
from podnet.plugins.meta.portmap._config import PortMapping
from podnet.plugins.meta.portmap._table import Element, IPAddress


def forget_flows_to_host_ports(mappings: Iterable[PortMapping], versions: Iterable[int]) -> None:
    """After ADD: every UDP flow to one of these hostPorts, for each family the pod has."""
    ports = {m.host_port for m in mappings if m.protocol == "udp"}
    if not ports:
        return
    for version in sorted(set(versions)):
        try:
            delete_conntrack_entries(version, socket.IPPROTO_UDP, ports)
        except (NetlinkError, OSError) as exc:
            log(f"failed to delete stale UDP conntrack entries for ports {sorted(ports)}: {exc}")


def forget_flows_to_pods(removed: Iterable[Element]) -> None:
    """After DEL or GC: the UDP flows DNATed through the removed elements."""
    ports: dict[tuple[int, IPAddress], set[int]] = {}
    for element in removed:
        mapped = element.mapped()
        if mapped is not None and mapped[1] == "udp":
            version, _, port, pod_ip = mapped
            ports.setdefault((version, pod_ip), set()).add(port)
    for (version, pod_ip), to_pod in sorted(ports.items(), key=str):
        try:
            delete_conntrack_entries(version, socket.IPPROTO_UDP, to_pod, reply_source=pod_ip)
        except (NetlinkError, OSError) as exc:
            log(f"failed to delete UDP conntrack entries of {pod_ip}: {exc}")
