"""Which interface faces the other nodes, and at which address they reach this node:
flanneld's choice (its main.go and pkg/ipmatch), in flanneld's order and words.

    1. each --iface (a name, or an address one interface holds), in turn;
    2. then each --iface-regex, in turn: the first interface with an address the regex
       matches, else the first whose name it matches;
    3. then --iface-can-reach: the interface of the route to that address (`ip route get`);
       the first of these that yields an interface with an address of the network's
       family wins, a candidate that fails is logged and the next one is tried;
    4. none of the three given: the interface holding --public-ip (--public-ipv6 for an
       IPv6-only network) if given, else the default route's.

The interface's address is the VXLAN device's local address; the published address
(annotation public-ip, the one other nodes send to and route via) is --public-ip when
given, else the interface's address. The two differ only behind NAT, which host-gw
refuses (as flannel's host-gw backend does).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address, ip_address

from podnet.agent._config import ConfigError
from podnet.netlink import (
    Link,
    Rtnl,
    RtnlError,
    list_addresses,
    list_links,
    list_routes,
    lookup_route,
)

log = logging.getLogger("podnet.agent")

IPAddress = IPv4Address | IPv6Address

# IFA_F_* (linux/if_addr.h); TEMPORARY shares its bit with SECONDARY, as in flannel's sort
IFA_F_TEMPORARY = 0x01
IFA_F_DEPRECATED = 0x20
IFA_F_PERMANENT = 0x80


class InterfaceError(ConfigError):
    """No interface matches what the options ask for (flanneld exits on it too)."""


@dataclass(frozen=True)
class InterfaceOptions:
    """flanneld's interface flags; empty: not given."""

    ifaces: tuple[str, ...] = ()
    regexes: tuple[str, ...] = ()
    can_reach: str = ""
    public_ip: str = ""
    public_ipv6: str = ""

    @property
    def explicit(self) -> bool:
        return bool(self.ifaces or self.regexes or self.can_reach)


@dataclass(frozen=True)
class ExternalInterface:
    """flannel's ExternalInterface: the chosen link, its own addresses, the published ones
    (None: the network has no such family)."""

    name: str
    index: int
    mtu: int
    address: IPv4Address | None
    address_v6: IPv6Address | None
    public_ip: IPv4Address | None
    public_ipv6: IPv6Address | None


@dataclass(frozen=True)
class _Stack:
    ipv4: bool
    ipv6: bool

    @property
    def dual(self) -> bool:
        return self.ipv4 and self.ipv6


def choose_interface(
    rtnl: Rtnl, options: InterfaceOptions, *, ipv4: bool = True, ipv6: bool = False
) -> ExternalInterface:
    """The interface flanneld would choose with these options in this namespace, for a
    network of these families; InterfaceError, in flanneld's words, if there is none."""
    if not (ipv4 or ipv6):
        raise InterfaceError("none matched ip stack")
    stack = _Stack(ipv4, ipv6)
    if not options.explicit:
        try:
            return _lookup(rtnl, stack, options, ifname=options.public_ip or options.public_ipv6)
        except InterfaceError as exc:
            raise InterfaceError(f"Failed to find any valid interface to use: {exc}") from None
    reasons: list[str] = []
    candidates: list[tuple[str, dict[str, str]]] = [(i, {"ifname": i}) for i in options.ifaces]
    candidates += [(r, {"regex": r}) for r in options.regexes]
    if options.can_reach:
        candidates.append((f"ifaceCanReach: {options.can_reach}", {"can_reach": options.can_reach}))
    for what, how in candidates:
        try:
            return _lookup(rtnl, stack, options, **how)
        except InterfaceError as exc:
            log.info("Could not find valid interface matching %s: %s", what, exc)
            reasons.append(f"{what}: {exc}")
    raise InterfaceError(
        "Failed to find interface to use that matches the interfaces and/or regexes "
        f"provided ({'; '.join(reasons)})"
    )


def _lookup(
    rtnl: Rtnl,
    stack: _Stack,
    options: InterfaceOptions,
    *,
    ifname: str = "",
    regex: str = "",
    can_reach: str = "",
) -> ExternalInterface:
    """flannel's LookupExtIface: one candidate (a name or address, a regex, an address to
    reach, or none of them: the default route's interface)."""
    view = _Interfaces(rtnl)
    address4: IPv4Address | None = None
    address6: IPv6Address | None = None
    if ifname:
        link, address4, address6 = _by_name_or_address(view, stack, options, ifname)
    elif regex:
        link, address4, address6 = _by_regex(view, stack, regex)
    elif can_reach:
        link, address4 = _by_route(rtnl, view, can_reach)
    else:
        log.info("Determining IP address of default interface")
        link = _default_route_link(rtnl, view, stack)
    if stack.ipv4 and address4 is None:
        found4 = view.usable(link, 4)
        if not found4:
            raise InterfaceError(f"failed to find IPv4 address for interface {link.name}")
        address4 = _v4(found4[0])
    if stack.ipv6 and address6 is None:
        found6 = view.usable(link, 6)
        if not found6:
            raise InterfaceError(f"failed to find IPv6 address for interface {link.name}")
        address6 = _v6(found6[0])
    if address4 is not None:
        log.info("Using interface with name %s and address %s", link.name, address4)
    if address6 is not None:
        log.info("Using interface with name %s and v6 address %s", link.name, address6)
    public4 = _public(options.public_ip, 4, "invalid public IP address")
    public6 = _public(options.public_ipv6, 6, "invalid public IPv6 address")
    if public4 is None and stack.ipv4:
        log.info("Defaulting external address to interface address (%s)", address4)
        public4 = address4
    if public6 is None and stack.ipv6:
        log.info("Defaulting external v6 address to interface address (%s)", address6)
        public6 = address6
    return ExternalInterface(
        name=link.name,
        index=link.index,
        mtu=link.mtu,
        address=_v4(address4) if stack.ipv4 else None,
        address_v6=_v6(address6) if stack.ipv6 else None,
        public_ip=_v4(public4) if stack.ipv4 else None,
        public_ipv6=_v6(public6) if stack.ipv6 else None,
    )


def _by_name_or_address(
    view: _Interfaces, stack: _Stack, options: InterfaceOptions, ifname: str
) -> tuple[Link, IPv4Address | None, IPv6Address | None]:
    address = _parse(ifname)
    if address is None:
        link = view.by_name(ifname)
        if link is None:
            raise InterfaceError(f"error looking up interface {ifname}: no such network interface")
        return link, None, None
    log.info("Searching for interface using %s", address)
    if address.version == 6:
        link = view.by_address(address)
        if link is None:
            raise InterfaceError(
                f"error looking up v6 interface {ifname}: no interface with given IPv6 found"
            )
        return link, None, _v6(address)
    link = view.by_address(address)
    if link is None:
        raise InterfaceError(
            f"error looking up interface {ifname}: no interface with given IP found"
        )
    address6 = None
    public6 = _parse(options.public_ipv6) if stack.dual else None
    if public6 is not None:  # a dual-stack node publishes both from one interface
        link6 = view.by_address(public6)
        if link6 is None:
            raise InterfaceError(
                f"error looking up v6 interface {options.public_ipv6}: "
                "no interface with given IPv6 found"
            )
        if link6.index != link.index:
            raise InterfaceError(
                f"v6 interface {link6.name} must be the same with v4 interface {link.name}"
            )
        address6 = _v6(public6)
    return link, _v4(address), address6


def _by_regex(
    view: _Interfaces, stack: _Stack, pattern: str
) -> tuple[Link, IPv4Address | None, IPv6Address | None]:
    """The first interface (by index) with an address the regex matches (for dual-stack:
    one of each family), else the first whose name it matches; like Go's MatchString,
    the regex may match anywhere."""
    try:
        regex = re.compile(pattern)
    except re.error as exc:
        raise InterfaceError(f"could not compile the IP address regex '{pattern}': {exc}") from None
    for link in view.links:
        four = _first_match(regex, view.usable(link, 4)) if stack.ipv4 else None
        six = _first_match(regex, view.usable(link, 6)) if stack.ipv6 else None
        if (four is not None or not stack.ipv4) and (six is not None or not stack.ipv6):
            return link, _v4(four) if four else None, _v6(six) if six else None
    for link in view.links:
        if regex.search(link.name):
            return link, None, None
    available = ", ".join(
        f"{link.name}:[{' '.join(str(a) for a in view.usable(link, 4 if stack.ipv4 else 6))}]"
        for link in view.links
    )
    raise InterfaceError(
        f"could not match pattern {pattern} to any of the available network interfaces "
        f"({available})"
    )


def _by_route(rtnl: Rtnl, view: _Interfaces, target: str) -> tuple[Link, IPv4Address | None]:
    address = _parse(target)
    if not isinstance(address, IPv4Address):
        raise InterfaceError(
            f"failed to get ifcanreach based interface: {target!r} is not an IPv4 address"
        )
    log.info("Determining interface to use based on given ifcanreach: %s", address)
    try:
        found = lookup_route(rtnl, address)
    except RtnlError as exc:
        raise InterfaceError(
            f"failed to get ifcanreach based interface: couldn't lookup route to {address}: "
            f"{exc.strerror or exc}"
        ) from None
    link = view.by_index(found.ifindex)
    if link is None:
        raise InterfaceError("failed to get ifcanreach based interface: couldn't lookup interface")
    # the route to an IPv4 target prefers an IPv4 source
    return link, found.source if isinstance(found.source, IPv4Address) else None


def _default_route_link(rtnl: Rtnl, view: _Interfaces, stack: _Stack) -> Link:
    """The interface of the default route (the lowest metric's); for dual-stack the IPv4
    and IPv6 default routes must leave through the same one."""
    link = _default_link(rtnl, view, 4 if stack.ipv4 else 6)
    if stack.dual:
        link6 = _default_link(rtnl, view, 6)
        if link6.index != link.index:
            raise InterfaceError(
                f"v6 default route interface {link6.name} must be the same with v4 default "
                f"route interface {link.name}"
            )
    return link


def _default_link(rtnl: Rtnl, view: _Interfaces, version: int) -> Link:
    v6 = " v6" if version == 6 else ""
    defaults = [r for r in list_routes(rtnl, version=version) if r.dst.prefixlen == 0]
    for route in sorted(defaults, key=lambda r: r.priority):
        link = view.by_index(route.oif) if route.oif else None
        if link is None:
            raise InterfaceError(
                f"failed to get default{v6} interface: found default{v6} route but could "
                "not determine interface"
            )
        return link
    raise InterfaceError(f"failed to get default{v6} interface: unable to find default{v6} route")


class _Interfaces:
    """The namespace's links and addresses, read once per lookup."""

    def __init__(self, rtnl: Rtnl) -> None:
        self.links = sorted(list_links(rtnl), key=lambda link: link.index)
        self._addresses = list_addresses(rtnl)

    def by_name(self, name: str) -> Link | None:
        return next((link for link in self.links if link.name == name), None)

    def by_index(self, index: int) -> Link | None:
        return next((link for link in self.links if link.index == index), None)

    def by_address(self, address: IPAddress) -> Link | None:
        """The first link holding `address` (any kind of address)."""
        for held in self._addresses:
            if held.address.ip == address:
                return self.by_index(held.index)
        return None

    def usable(self, link: Link, version: int) -> list[IPAddress]:
        """flannel's GetInterfaceIP4Addrs/IP6Addrs: global or link-local unicast, not
        deprecated; global before link-local, set by hand before configured
        automatically, not temporary before temporary."""
        held = [
            a
            for a in self._addresses
            if a.index == link.index
            and a.address.version == version
            and _unicast(a.address.ip)
            and not a.flags & IFA_F_DEPRECATED
        ]
        held.sort(
            key=lambda a: (
                a.address.ip.is_link_local,
                not a.flags & IFA_F_PERMANENT,
                bool(a.flags & IFA_F_TEMPORARY),
            )
        )
        return [a.address.ip for a in held]


def _unicast(address: IPAddress) -> bool:
    """Go's IsGlobalUnicast or IsLinkLocalUnicast."""
    if address.is_loopback or address.is_multicast or address.is_unspecified:
        return False
    return address != IPv4Address("255.255.255.255")


def _first_match(regex: re.Pattern[str], addresses: Iterable[IPAddress]) -> IPAddress | None:
    return next((a for a in addresses if regex.search(str(a))), None)


def _parse(text: str) -> IPAddress | None:
    try:
        return ip_address(text)
    except ValueError:
        return None


def _public(text: str, version: int, problem: str) -> IPAddress | None:
    if not text:
        return None
    address = _parse(text)
    if address is None or address.version != version:
        raise InterfaceError(f"{problem}: {text}")
    log.info("Using %s as external address", address)
    return address


def _v4(address: IPAddress | None) -> IPv4Address | None:
    return address if isinstance(address, IPv4Address) else None


def _v6(address: IPAddress | None) -> IPv6Address | None:
    return address if isinstance(address, IPv6Address) else None


def interface_options(
    ifaces: Sequence[str] = (),
    regexes: Sequence[str] = (),
    can_reach: str = "",
    public_ip: str = "",
    public_ipv6: str = "",
) -> InterfaceOptions:
    """Options as given; a --public-ip(v6) that is not an address of its family is refused
    before anything starts."""
    for text, version, flag in ((public_ip, 4, "--public-ip"), (public_ipv6, 6, "--public-ipv6")):
        address = _parse(text) if text else None
        if text and (address is None or address.version != version):
            raise InterfaceError(f"{flag} {text!r} is not an IPv{version} address")
    return InterfaceOptions(tuple(ifaces), tuple(regexes), can_reach, public_ip, public_ipv6)
