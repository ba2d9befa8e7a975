"""Connection-tracking entries over ctnetlink, in the calling thread's network namespace.

The portmap plugin deletes the UDP entries of a hostPort when it maps it: a UDP "flow"
that began before (to the node itself, or DNATed to a pod that had the port earlier)
keeps its old verdict for as long as datagrams keep coming, and would never reach the
new pod (the reference's DeleteConntrackEntriesForDstPort). As that function (through
vishvananda/netlink's ConntrackDeleteFilters), a dump of the family's table, filtered
here by protocol and original destination port, then one delete per match by its
original tuple; but one dump for all the ports, where the reference dumps per port: the
kernel walks its whole conntrack hash (every namespace's, 262144 buckets here) for each
dump, 16-60 ms on this loaded machine. A namespace that tracks nothing is not dumped.

Messages are built with struct, as _nlmsg builds rtnetlink's: a nfgenmsg header
(family, version 0, resource id 0), then attributes; CTA_TUPLE_ORIG nests CTA_TUPLE_IP
and CTA_TUPLE_PROTO (CTA_PROTO_NUM u8, ports big-endian u16). Nothing else is imported,
so a plugin that maps a UDP hostPort pays a socket, not pyroute2.
"""

from __future__ import annotations

import errno
import os
import socket
import struct
from collections.abc import Collection
from ipaddress import IPv4Address, IPv6Address

from podnet.netlink._nlmsg import (
    NetlinkRequestError,
    NetlinkSocket,
    attr,
    nested,
    parse_attrs,
    u8,
)
from podnet.netlink._rtnl import NetlinkError

NETLINK_NETFILTER = 12
NFNL_SUBSYS_CTNETLINK = 1
IPCTNL_MSG_CT_GET = 1
IPCTNL_MSG_CT_DELETE = 2
CTA_TUPLE_ORIG = 1
CTA_TUPLE_REPLY = 2
CTA_TUPLE_IP = 1
CTA_TUPLE_PROTO = 2
CTA_ZONE = 18
CTA_IP_SRC = {4: 1, 6: 3}  # CTA_IP_V4_SRC, CTA_IP_V6_SRC
CTA_PROTO_NUM = 1
CTA_PROTO_DST_PORT = 3

NFGENMSG = struct.Struct("=BBH")
_PORT = struct.Struct("!H")
_FAMILIES = {4: socket.AF_INET, 6: socket.AF_INET6}


def _message(kind: int) -> int:
    return (NFNL_SUBSYS_CTNETLINK << 8) | kind


def delete_conntrack_entries(
    version: int,
    protocol: int,
    dst_ports: Collection[int],
    *,
    reply_source: IPv4Address | IPv6Address | None = None,
) -> int:
    """Delete every entry of IP `version` whose original direction has this protocol
    (IPPROTO_*) and one of these destination ports, and, with `reply_source`, whose
    answers come from that address (the flows DNATed to one pod); returns how many. One
    removed meanwhile (it expired, someone else deleted it) is not an error."""
    if not dst_ports or _tracked() == 0:
        return 0
    header = NFGENMSG.pack(_FAMILIES[version], 0, 0)
    sock = socket.socket(
        socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, NETLINK_NETFILTER
    )
    try:
        nl = NetlinkSocket(sock)
        try:
            payloads = nl.dump(_message(IPCTNL_MSG_CT_GET), header)
        except NetlinkRequestError as exc:
            raise _error("list conntrack entries", exc) from None
        deleted = 0
        for payload in payloads:
            found = parse_attrs(payload, NFGENMSG.size)
            original = found.get(CTA_TUPLE_ORIG)
            if original is None or not _matches(original, protocol, dst_ports):
                continue
            if reply_source is not None and _reply_source(found, version) != reply_source.packed:
                continue
            body = header + nested(CTA_TUPLE_ORIG, original, flag=True)
            if CTA_ZONE in found:
                body += attr(CTA_ZONE, found[CTA_ZONE])
            try:
                nl.request(_message(IPCTNL_MSG_CT_DELETE), body)
            except NetlinkRequestError as exc:
                if exc.errno != errno.ENOENT:
                    raise _error("delete a conntrack entry", exc) from None
                continue
            deleted += 1
        return deleted
    finally:
        sock.close()


def _tracked() -> int | None:
    """How many connections this namespace tracks (None: unknown)."""
    try:
        with open("/proc/sys/net/netfilter/nf_conntrack_count", "rb") as handle:
            return int(handle.read())
    except (OSError, ValueError):
        return None


def _matches(original: bytes, protocol: int, dst_ports: Collection[int]) -> bool:
    proto = parse_attrs(original).get(CTA_TUPLE_PROTO)
    if proto is None:
        return False
    fields = parse_attrs(proto)
    number, port = fields.get(CTA_PROTO_NUM), fields.get(CTA_PROTO_DST_PORT)
    if number is None or port is None or len(port) < _PORT.size:
        return False
    return u8(number) == protocol and _PORT.unpack_from(port)[0] in dst_ports


def _reply_source(found: dict[int, bytes], version: int) -> bytes | None:
    reply = found.get(CTA_TUPLE_REPLY)
    ip = parse_attrs(reply).get(CTA_TUPLE_IP) if reply is not None else None
    return parse_attrs(ip).get(CTA_IP_SRC[version]) if ip is not None else None


def _error(what: str, exc: NetlinkRequestError) -> NetlinkError:
    code = exc.errno or errno.EIO
    return NetlinkError(code, f"{what}: {os.strerror(code)}")
