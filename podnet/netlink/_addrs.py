"""IP addresses of devices."""

from __future__ import annotations

import errno
import ipaddress
import socket
from dataclasses import dataclass
from typing import Any

from podnet.netlink._rtnl import NetlinkError, Rtnl

IPInterface = ipaddress.IPv4Interface | ipaddress.IPv6Interface

IFA_F_NODAD = 0x02
IFA_F_TENTATIVE = 0x40
RT_SCOPE_LINK = 253
RT_SCOPE_HOST = 254


@dataclass(frozen=True)
class Address:
    index: int
    address: IPInterface  # address with its prefix length, e.g. 10.244.1.1/24
    scope: int  # 0 universe, 253 link, 254 host
    tentative: bool = False  # IPv6 duplicate address detection still running

    @property
    def is_global(self) -> bool:
        return self.scope == 0


def _family(version: int | None) -> int | None:
    return {4: socket.AF_INET, 6: socket.AF_INET6, None: None}[version]


def list_addresses(
    nl: Rtnl, index: int | None = None, *, version: int | None = None
) -> list[Address]:
    """Addresses of the namespace, of one device, of one IP version."""
    kwargs: dict[str, Any] = {}
    family = _family(version)
    if family is not None:
        kwargs["family"] = family
    if index is not None:
        kwargs["index"] = index
    out = []
    for msg in nl.dump("list addresses", "addr", **kwargs):
        text = msg.get_attr("IFA_LOCAL") or msg.get_attr("IFA_ADDRESS")
        prefix = int(msg["prefixlen"])
        flags = int(msg.get_attr("IFA_FLAGS") or msg["flags"])
        out.append(
            Address(
                index=int(msg["index"]),
                address=ipaddress.ip_interface(f"{text}/{prefix}"),
                scope=int(msg["scope"]),
                tentative=bool(flags & IFA_F_TENTATIVE),
            )
        )
    return out


def add_address(nl: Rtnl, index: int, address: IPInterface, *, nodad: bool = False) -> None:
    """Add an address; one already present raises NetlinkError(EEXIST)."""
    kwargs: dict[str, Any] = {}
    if nodad and address.version == 6:
        kwargs["flags"] = IFA_F_NODAD
    nl.call(
        f"add address {address} to link #{index}",
        "addr",
        "add",
        index=index,
        address=str(address.ip),
        prefixlen=address.network.prefixlen,
        **kwargs,
    )


def delete_address(nl: Rtnl, index: int, address: IPInterface) -> bool:
    """Remove an address; False when it was not there."""
    try:
        nl.call(
            f"remove address {address} from link #{index}",
            "addr",
            "del",
            index=index,
            address=str(address.ip),
            prefixlen=address.network.prefixlen,
        )
    except NetlinkError as exc:
        if exc.errno == errno.EADDRNOTAVAIL:
            return False
        raise
    return True
