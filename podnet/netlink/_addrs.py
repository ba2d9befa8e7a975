"""IP addresses of devices (through the handle's own socket, see _nlmsg)."""

from __future__ import annotations

import _socket
import errno
import ipaddress

from podnet._record import FrozenRecord
from podnet.netlink._nlmsg import (
    IFADDRMSG,
    NLM_F_CREATE,
    NLM_F_EXCL,
    RTM_DELADDR,
    RTM_GETADDR,
    RTM_NEWADDR,
    attr,
    attr_u32,
    ifaddrmsg,
    parse_attrs,
    u32,
)
from podnet.netlink._rtnl import NetlinkError, Rtnl, raw_errors

TYPE_CHECKING = False  # not typing's own: importing typing costs a plugin run in-process ~3 ms
if TYPE_CHECKING:
    from typing import Final

IPInterface = ipaddress.IPv4Interface | ipaddress.IPv6Interface

IFA_ADDRESS = 1
IFA_LOCAL = 2
IFA_FLAGS = 8
IFA_F_NODAD = 0x02
IFA_F_TENTATIVE = 0x40
RT_SCOPE_LINK = 253
RT_SCOPE_HOST = 254


class Address(FrozenRecord):
    __slots__ = ("index", "address", "scope", "tentative", "flags")

    def __init__(
        self,
        index: int,
        address: IPInterface,
        scope: int,
        tentative: bool = False,
        flags: int = 0,
    ) -> None:
        self.index: Final = index
        self.address: Final = address  # address with its prefix length, e.g. 10.244.1.1/24
        self.scope: Final = scope  # 0 universe, 253 link, 254 host
        self.tentative: Final = tentative  # IPv6 duplicate address detection still running
        self.flags: Final = flags  # IFA_F_*: permanent (set by hand), temporary, deprecated

    @property
    def is_global(self) -> bool:
        return self.scope == 0


def _family(version: int) -> int:
    return _socket.AF_INET if version == 4 else _socket.AF_INET6


def list_addresses(
    nl: Rtnl, index: int | None = None, *, version: int | None = None
) -> list[Address]:
    """Addresses of the namespace, of one device, of one IP version."""
    family = _family(version) if version is not None else _socket.AF_UNSPEC
    with raw_errors("list addresses", missing=()):
        payloads = nl.nl.dump(RTM_GETADDR, ifaddrmsg(family=family))
    out = []
    for payload in payloads:
        msg_family, prefix, header_flags, scope, msg_index = IFADDRMSG.unpack_from(payload)
        if index is not None and msg_index != index:
            continue
        if family != _socket.AF_UNSPEC and msg_family != family:
            continue
        attrs = parse_attrs(payload, IFADDRMSG.size)
        raw = attrs.get(IFA_LOCAL) or attrs.get(IFA_ADDRESS)
        if raw is None:
            continue
        flags = u32(attrs[IFA_FLAGS]) if IFA_FLAGS in attrs else header_flags
        text = _socket.inet_ntop(msg_family, raw)
        out.append(
            Address(
                index=msg_index,
                address=ipaddress.ip_interface(f"{text}/{prefix}"),
                scope=scope,
                tentative=bool(flags & IFA_F_TENTATIVE),
                flags=flags,
            )
        )
    return out


def _address_body(index: int, address: IPInterface, flags: int = 0) -> bytes:
    family = _family(address.version)
    packed = address.ip.packed
    body = ifaddrmsg(family=family, prefixlen=address.network.prefixlen, flags=flags, index=index)
    if address.version == 4:
        body += attr(IFA_LOCAL, packed)
    body += attr(IFA_ADDRESS, packed)
    if flags:
        body += attr_u32(IFA_FLAGS, flags)
    return body


def add_address(nl: Rtnl, index: int, address: IPInterface, *, nodad: bool = False) -> None:
    """Add an address; one already present raises NetlinkError(EEXIST)."""
    flags = IFA_F_NODAD if nodad and address.version == 6 else 0
    with raw_errors(f"add address {address} to link #{index}"):
        nl.nl.request(RTM_NEWADDR, _address_body(index, address, flags), NLM_F_CREATE | NLM_F_EXCL)


def delete_address(nl: Rtnl, index: int, address: IPInterface) -> bool:
    """Remove an address; False when it was not there."""
    try:
        with raw_errors(f"remove address {address} from link #{index}"):
            nl.nl.request(RTM_DELADDR, _address_body(index, address))
    except NetlinkError as exc:
        if exc.errno == errno.EADDRNOTAVAIL:
            return False
        raise
    return True
