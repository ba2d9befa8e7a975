"""The result of ADD, in one current form (spec 1.1.0), with converters to and from
every version a runtime may ask for.

Conversion always goes through `Result`: `Result.from_json(obj)` reads any version,
`result.to_json(version)` writes any version. The explicit tables `_READERS` and
`_WRITERS` map each version to its converter (no registration by import side effect).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable

from podnet._record import Record
from podnet.cni._errors import DecodingFailure, IncompatibleVersion
from podnet.cni._values import is_int
from podnet.cni._version import ALL_VERSIONS

TYPE_CHECKING = False  # not typing's own: importing typing costs a plugin run in-process ~3 ms
if TYPE_CHECKING:
    from typing import Any

IPInterface = ipaddress.IPv4Interface | ipaddress.IPv6Interface
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class Interface(Record):
    __slots__ = ("name", "mac", "mtu", "sandbox", "socket_path", "pci_id")

    def __init__(
        self,
        name: str,
        mac: str = "",
        mtu: int = 0,
        sandbox: str = "",
        socket_path: str = "",
        pci_id: str = "",
    ) -> None:
        self.name = name
        self.mac = mac
        self.mtu = mtu
        self.sandbox = sandbox
        self.socket_path = socket_path
        self.pci_id = pci_id


class IPConfig(Record):
    __slots__ = ("address", "gateway", "interface")

    def __init__(
        self,
        address: IPInterface,
        gateway: IPAddress | None = None,
        interface: int | None = None,
    ) -> None:
        self.address = address
        self.gateway = gateway
        self.interface = interface

    @property
    def version(self) -> int:
        return self.address.version


class Route(Record):
    __slots__ = ("dst", "gw", "mtu", "advmss", "priority", "table", "scope")

    def __init__(
        self,
        dst: IPNetwork,
        gw: IPAddress | None = None,
        mtu: int = 0,
        advmss: int = 0,
        priority: int = 0,
        table: int | None = None,
        scope: int | None = None,
    ) -> None:
        self.dst = dst
        self.gw = gw
        self.mtu = mtu
        self.advmss = advmss
        self.priority = priority
        self.table = table
        self.scope = scope


class DNS(Record):
    __slots__ = ("nameservers", "domain", "search", "options")

    def __init__(
        self,
        nameservers: list[str] | None = None,
        domain: str = "",
        search: list[str] | None = None,
        options: list[str] | None = None,
    ) -> None:
        self.nameservers: list[str] = [] if nameservers is None else nameservers
        self.domain = domain
        self.search: list[str] = [] if search is None else search
        self.options: list[str] = [] if options is None else options

    def is_empty(self) -> bool:
        return not (self.nameservers or self.domain or self.search or self.options)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.nameservers:
            out["nameservers"] = list(self.nameservers)
        if self.domain:
            out["domain"] = self.domain
        if self.search:
            out["search"] = list(self.search)
        if self.options:
            out["options"] = list(self.options)
        return out

    @classmethod
    def from_json(cls, obj: Any) -> DNS:
        if obj is None:
            return cls()
        if not isinstance(obj, dict):
            raise DecodingFailure("dns must be an object")
        return cls(
            nameservers=_str_list(obj.get("nameservers"), "dns.nameservers"),
            domain=_str(obj.get("domain"), "dns.domain"),
            search=_str_list(obj.get("search"), "dns.search"),
            options=_str_list(obj.get("options"), "dns.options"),
        )


class Result(Record):
    __slots__ = ("cni_version", "interfaces", "ips", "routes", "dns")

    def __init__(
        self,
        cni_version: str = "1.1.0",
        interfaces: list[Interface] | None = None,
        ips: list[IPConfig] | None = None,
        routes: list[Route] | None = None,
        dns: DNS | None = None,
    ) -> None:
        self.cni_version = cni_version
        self.interfaces: list[Interface] = [] if interfaces is None else interfaces
        self.ips: list[IPConfig] = [] if ips is None else ips
        self.routes: list[Route] = [] if routes is None else routes
        self.dns: DNS = DNS() if dns is None else dns

    def to_json(self, version: str) -> dict[str, Any]:
        writer = _WRITERS.get(version)
        if writer is None:
            raise IncompatibleVersion(f"unsupported CNI result version {version!r}")
        return writer(self, version)

    @classmethod
    def from_json(cls, obj: Any) -> Result:
        if not isinstance(obj, dict):
            raise DecodingFailure("a CNI result must be a JSON object")
        version = obj.get("cniVersion") or "0.1.0"
        reader = _READERS.get(version)
        if reader is None:
            raise IncompatibleVersion(f"unsupported CNI result version {version!r}")
        result = reader(obj)
        result.cni_version = version
        return result


# ---- readers ------------------------------------------------------------------------


def _str(value: Any, what: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise DecodingFailure(f"{what} must be a string")
    return value


def _str_list(value: Any, what: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise DecodingFailure(f"{what} must be a list of strings")
    return list(value)


def _int(value: Any, what: str) -> int:
    if value is None:
        return 0
    if not is_int(value):
        raise DecodingFailure(f"{what} must be an integer")
    return value


def parse_interface_address(text: Any, what: str) -> IPInterface:
    try:
        if not isinstance(text, str) or "/" not in text:
            raise ValueError
        return ipaddress.ip_interface(text)
    except ValueError:
        raise DecodingFailure(f"{what}: invalid CIDR address {text!r}") from None


def parse_address(text: Any, what: str) -> IPAddress | None:
    if text is None or text == "":
        return None
    try:
        if not isinstance(text, str):
            raise ValueError
        return ipaddress.ip_address(text)
    except ValueError:
        raise DecodingFailure(f"{what}: invalid IP address {text!r}") from None


def parse_network(text: Any, what: str) -> IPNetwork:
    try:
        if not isinstance(text, str):
            raise ValueError
        return ipaddress.ip_network(text, strict=False)
    except ValueError:
        raise DecodingFailure(f"{what}: invalid CIDR {text!r}") from None


def _read_route(obj: Any) -> Route:
    if not isinstance(obj, dict):
        raise DecodingFailure("route must be an object")
    table = obj.get("table")
    scope = obj.get("scope")
    return Route(
        dst=parse_network(obj.get("dst"), "route dst"),
        gw=parse_address(obj.get("gw"), "route gw"),
        mtu=_int(obj.get("mtu"), "route mtu"),
        advmss=_int(obj.get("advmss"), "route advmss"),
        priority=_int(obj.get("priority"), "route priority"),
        table=None if table is None else _int(table, "route table"),
        scope=None if scope is None else _int(scope, "route scope"),
    )


def _list(obj: Any, what: str) -> list[Any]:
    if obj is None:
        return []
    if not isinstance(obj, list):
        raise DecodingFailure(f"{what} must be a list")
    return obj


def _read_current(obj: dict[str, Any]) -> Result:
    """0.3.0 to 1.1.0: interfaces, ips (with 'version' before 1.0.0), routes, dns."""
    interfaces = []
    for item in _list(obj.get("interfaces"), "interfaces"):
        if not isinstance(item, dict):
            raise DecodingFailure("interface must be an object")
        interfaces.append(
            Interface(
                name=_str(item.get("name"), "interface name"),
                mac=_str(item.get("mac"), "interface mac"),
                mtu=_int(item.get("mtu"), "interface mtu"),
                sandbox=_str(item.get("sandbox"), "interface sandbox"),
                socket_path=_str(item.get("socketPath"), "interface socketPath"),
                pci_id=_str(item.get("pciID"), "interface pciID"),
            )
        )
    ips = []
    for item in _list(obj.get("ips"), "ips"):
        if not isinstance(item, dict):
            raise DecodingFailure("ip must be an object")
        index = item.get("interface")
        ips.append(
            IPConfig(
                address=parse_interface_address(item.get("address"), "ip address"),
                gateway=parse_address(item.get("gateway"), "ip gateway"),
                interface=None if index is None else _int(index, "ip interface"),
            )
        )
    routes = [_read_route(r) for r in _list(obj.get("routes"), "routes")]
    return Result(interfaces=interfaces, ips=ips, routes=routes, dns=DNS.from_json(obj.get("dns")))


def _read_020(obj: dict[str, Any]) -> Result:
    """0.1.0 and 0.2.0: one 'ip4' and one 'ip6' object, each with its own routes."""
    result = Result(dns=DNS.from_json(obj.get("dns")))
    for key in ("ip4", "ip6"):
        block = obj.get(key)
        if block is None:
            continue
        if not isinstance(block, dict):
            raise DecodingFailure(f"{key} must be an object")
        result.ips.append(
            IPConfig(
                address=parse_interface_address(block.get("ip"), f"{key}.ip"),
                gateway=parse_address(block.get("gateway"), f"{key}.gateway"),
            )
        )
        result.routes.extend(_read_route(r) for r in _list(block.get("routes"), f"{key}.routes"))
    return result


# ---- writers ------------------------------------------------------------------------


def _write_route(route: Route, *, rich: bool) -> dict[str, Any]:
    out: dict[str, Any] = {"dst": str(route.dst)}
    if route.gw is not None:
        out["gw"] = str(route.gw)
    if rich:
        if route.mtu:
            out["mtu"] = route.mtu
        if route.advmss:
            out["advmss"] = route.advmss
        if route.priority:
            out["priority"] = route.priority
        if route.table is not None:
            out["table"] = route.table
        if route.scope is not None:
            out["scope"] = route.scope
    return out


def _write_current(result: Result, version: str) -> dict[str, Any]:
    rich = version == "1.1.0"
    with_ip_version = version in ("0.3.0", "0.3.1", "0.4.0")
    out: dict[str, Any] = {"cniVersion": version}
    if result.interfaces:
        interfaces = []
        for iface in result.interfaces:
            item: dict[str, Any] = {"name": iface.name}
            if iface.mac:
                item["mac"] = iface.mac
            if rich and iface.mtu:
                item["mtu"] = iface.mtu
            if iface.sandbox:
                item["sandbox"] = iface.sandbox
            if rich and iface.socket_path:
                item["socketPath"] = iface.socket_path
            if rich and iface.pci_id:
                item["pciID"] = iface.pci_id
            interfaces.append(item)
        out["interfaces"] = interfaces
    if result.ips:
        ips = []
        for ip in result.ips:
            entry: dict[str, Any] = {}
            if with_ip_version:
                entry["version"] = str(ip.version)
            if ip.interface is not None:
                entry["interface"] = ip.interface
            entry["address"] = str(ip.address)
            if ip.gateway is not None:
                entry["gateway"] = str(ip.gateway)
            ips.append(entry)
        out["ips"] = ips
    if result.routes:
        out["routes"] = [_write_route(r, rich=rich) for r in result.routes]
    out["dns"] = result.dns.to_json()
    return out


def _write_020(result: Result, version: str) -> dict[str, Any]:
    out: dict[str, Any] = {"cniVersion": version}
    for family, key in ((4, "ip4"), (6, "ip6")):
        ips = [ip for ip in result.ips if ip.version == family]
        if len(ips) > 1:
            raise IncompatibleVersion(
                f"cannot convert: result has more than one IPv{family} address "
                f"and version {version} allows one"
            )
        if not ips:
            continue
        block: dict[str, Any] = {"ip": str(ips[0].address)}
        if ips[0].gateway is not None:
            block["gateway"] = str(ips[0].gateway)
        routes = [_write_route(r, rich=False) for r in result.routes if r.dst.version == family]
        if routes:
            block["routes"] = routes
        out[key] = block
    out["dns"] = result.dns.to_json()
    return out


if TYPE_CHECKING:
    _Reader = Callable[[dict[str, Any]], Result]
    _Writer = Callable[[Result, str], dict[str, Any]]

_READERS: dict[str, _Reader] = {
    "0.1.0": _read_020,
    "0.2.0": _read_020,
    "0.3.0": _read_current,
    "0.3.1": _read_current,
    "0.4.0": _read_current,
    "1.0.0": _read_current,
    "1.1.0": _read_current,
}
_WRITERS: dict[str, _Writer] = {
    "0.1.0": _write_020,
    "0.2.0": _write_020,
    "0.3.0": _write_current,
    "0.3.1": _write_current,
    "0.4.0": _write_current,
    "1.0.0": _write_current,
    "1.1.0": _write_current,
}
assert set(_READERS) == set(_WRITERS) == set(ALL_VERSIONS)
