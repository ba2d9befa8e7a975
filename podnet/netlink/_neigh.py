"""Permanent neighbour (ARP) and FDB entries on the overlay device.

With the overlay's static scheme (flannel vxlan, no L2/L3 miss handling), each remote node
needs one ARP entry (its VTEP address -> VTEP MAC) and one FDB entry (VTEP MAC -> its public
IP) on the local VXLAN device. Both are written with NLM_F_REPLACE so that a changed MAC or
public IP is updated in place.

pyroute2 pitfall: `fdb("replace", ...)` must be given the state and flags explicitly; pyroute2
fills in NTF_SELF and NUD_PERMANENT|NUD_NOARP only for add/append/del, and without them the
kernel answers EOPNOTSUPP. `fdb("append")` on an existing MAC silently keeps the old dst.
"""

from __future__ import annotations

import errno
import ipaddress
import socket
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address
from typing import Any

from podnet.netlink._rtnl import Rtnl, RtnlError, rtnl_errors

NUD_NOARP = 0x40
NUD_PERMANENT = 0x80
NTF_SELF = 0x02

# Deleting an entry that is not there answers one of these: it is already deleted.
_MISSING = (errno.ENOENT, errno.ESRCH, errno.ENODEV)


@dataclass(frozen=True, order=True)
class Neighbour:
    """A permanent ARP entry: `ip` answers to `mac` on link #ifindex."""

    ifindex: int
    ip: IPv4Address | IPv6Address
    mac: str

    def sort_key(self) -> tuple[int, int, Neighbour]:
        return (self.ifindex, self.ip.version, self)


@dataclass(frozen=True, order=True)
class FdbEntry:
    """A forwarding entry of a VXLAN device: frames for `mac` go to the VTEP at `dst`."""

    ifindex: int
    mac: str
    dst: IPv4Address | IPv6Address

    def sort_key(self) -> tuple[int, int, FdbEntry]:
        return (self.ifindex, self.dst.version, self)


def neigh_replace(rtnl: Rtnl, entry: Neighbour) -> None:
    with rtnl_errors(f"replace neighbour {entry.ip} lladdr {entry.mac} on link #{entry.ifindex}"):
        rtnl.ipr.neigh(
            "replace",
            ifindex=entry.ifindex,
            dst=str(entry.ip),
            lladdr=entry.mac,
            state=NUD_PERMANENT,
        )


def neigh_delete(rtnl: Rtnl, entry: Neighbour) -> None:
    """Delete a neighbour entry; a missing one counts as deleted."""
    try:
        with rtnl_errors(f"delete neighbour {entry.ip} on link #{entry.ifindex}"):
            rtnl.ipr.neigh("del", ifindex=entry.ifindex, dst=str(entry.ip), lladdr=entry.mac)
    except RtnlError as exc:
        if exc.errno not in _MISSING:
            raise


def permanent_neighbours(rtnl: Rtnl, ifindex: int) -> list[Neighbour]:
    """The permanent neighbour entries (IPv4 ARP and IPv6 NDP) of link #ifindex (learned
    ones are left out)."""
    entries = []
    for family in (socket.AF_INET, socket.AF_INET6):
        msgs = _dump_neighbours(rtnl, ifindex, family)
        entries += [
            Neighbour(
                ifindex, ipaddress.ip_address(msg.get("NDA_DST")), msg.get("NDA_LLADDR").lower()
            )
            for msg in msgs
            if msg["ifindex"] == ifindex
            and msg["state"] & NUD_PERMANENT
            and msg.get("NDA_DST")
            and msg.get("NDA_LLADDR")
        ]
    return sorted(entries, key=Neighbour.sort_key)


def _dump_neighbours(rtnl: Rtnl, ifindex: int, family: int) -> list[Any]:
    return rtnl.dump(
        f"dump neighbours of link #{ifindex}",
        lambda: rtnl.ipr.neigh("dump", family=family, ifindex=ifindex),
    )


def fdb_replace(rtnl: Rtnl, entry: FdbEntry) -> None:
    with rtnl_errors(f"replace fdb {entry.mac} dst {entry.dst} on link #{entry.ifindex}"):
        rtnl.ipr.fdb(
            "replace",
            ifindex=entry.ifindex,
            lladdr=entry.mac,
            dst=str(entry.dst),
            state=NUD_PERMANENT | NUD_NOARP,
            flags=NTF_SELF,
        )


def fdb_delete(rtnl: Rtnl, entry: FdbEntry) -> None:
    """Delete an FDB entry; a missing one counts as deleted."""
    try:
        with rtnl_errors(f"delete fdb {entry.mac} dst {entry.dst} on link #{entry.ifindex}"):
            rtnl.ipr.fdb("del", ifindex=entry.ifindex, lladdr=entry.mac, dst=str(entry.dst))
    except RtnlError as exc:
        if exc.errno not in _MISSING:
            raise


def fdb_entries(rtnl: Rtnl, ifindex: int) -> list[FdbEntry]:
    """The permanent FDB entries of VXLAN link #ifindex that point at a remote VTEP (an
    IPv4 one for flannel.<VNI>, an IPv6 one for flannel-v6.<VNI>)."""
    msgs = rtnl.dump(
        f"dump fdb of link #{ifindex}",
        lambda: rtnl.ipr.fdb("dump", ifindex=ifindex),
    )
    entries = []
    for msg in msgs:
        dst = msg.get("NDA_DST")
        if msg["ifindex"] != ifindex or not dst or not msg["state"] & NUD_PERMANENT:
            continue
        try:
            address = ipaddress.ip_address(dst)
        except ValueError:
            continue
        entries.append(FdbEntry(ifindex, msg.get("NDA_LLADDR").lower(), address))
    return sorted(entries, key=FdbEntry.sort_key)
