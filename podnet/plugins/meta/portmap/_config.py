"""The portmap plugin's configuration, read as the reference (containernetworking/plugins
plugins/meta/portmap main.go parseConfig) reads it, for a plugin that always runs on
nftables:

- runtimeConfig.portMappings: [{hostPort, containerPort, protocol, hostIP}], what a runtime
  fills in for the `portMappings` capability (CONVENTIONS.md); keys matched as Go matches
  them, case-insensitively (containerd sends "HostPort", ...). Ports must be 1-65535,
  protocol tcp, udp or sctp (case-insensitive, as CRI and the CONVENTIONS write them;
  empty means tcp), hostIP an address or absent.
- snat (default true), masqAll (default false); markMasqBit 0-31, default 13, checked
  and otherwise unused: the nftables backend masquerades without a mark, as the
  reference's nftables backend does.
- conditionsV4 / conditionsV6: nftables expressions that must also hold for traffic to be
  mapped (e.g. "ip daddr != 192.0.2.9"). iptables-syntax conditions (starting with "-" or
  "!"), externalSetMarkChain and backend "iptables" are refused with the reference's words
  for a config of the other backend.
- The pod's addresses: from prevResult, the first of each family on the interface named
  CNI_IFNAME in a sandbox (or on no interface), as the reference picks them.
"""

from __future__ import annotations

import ipaddress

from podnet._record import FrozenRecord
from podnet.cni import DecodingFailure, InvalidConfig, Request, Result, is_int, prev_result
from podnet.ipam import IPAddress

TYPE_CHECKING = False  # not typing's own: importing typing costs a plugin run in-process ~3 ms
if TYPE_CHECKING:
    from typing import Any, Final

PROTOCOLS = ("tcp", "udp", "sctp")
DEFAULT_MARK_BIT = 13
_IPTABLES_ONLY = "iptables"
IPInterface = ipaddress.IPv4Interface | ipaddress.IPv6Interface


class PortMapping(FrozenRecord):
    """One hostPort. `host_ip` None: every local address (also for 0.0.0.0 and ::)."""

    __slots__ = ("host_port", "container_port", "protocol", "host_ip", "host_ip_version")

    def __init__(
        self,
        host_port: int,
        container_port: int,
        protocol: str,
        host_ip: IPAddress | None = None,
        host_ip_version: int = 0,
    ) -> None:
        self.host_port: Final = host_port
        self.container_port: Final = container_port
        self.protocol: Final = protocol
        self.host_ip: Final = host_ip
        self.host_ip_version: Final = host_ip_version  # 4 or 6 when hostIP was given, else 0

    def applies_to(self, version: int) -> bool:
        """The reference maps an entry with a hostIP only onto the pod address of its family."""
        return self.host_ip_version in (0, version)

    def describe(self) -> str:
        where = f"{self.host_ip}:" if self.host_ip is not None else ""
        return f"hostPort {where}{self.host_port}/{self.protocol}"


class PortMapConfig(FrozenRecord):
    __slots__ = (
        "network",
        "mappings",
        "snat",
        "masq_all",
        "mark_masq_bit",
        "conditions_v4",
        "conditions_v6",
    )

    def __init__(
        self,
        network: str,
        mappings: tuple[PortMapping, ...],
        snat: bool,
        masq_all: bool,
        mark_masq_bit: int,
        conditions_v4: tuple[str, ...],
        conditions_v6: tuple[str, ...],
    ) -> None:
        self.network: Final = network
        self.mappings: Final = mappings
        self.snat: Final = snat
        self.masq_all: Final = masq_all
        self.mark_masq_bit: Final = mark_masq_bit
        self.conditions_v4: Final = conditions_v4
        self.conditions_v6: Final = conditions_v6

    def conditions(self, version: int) -> tuple[str, ...]:
        return self.conditions_v4 if version == 4 else self.conditions_v6


def parse_config(request: Request) -> PortMapConfig:
    config = request.config
    snat = _bool(config, "snat", True)
    masq_all = _bool(config, "masqAll", False)
    backend = config.get("backend")
    if backend is not None and not isinstance(backend, str):
        raise DecodingFailure("failed to parse network configuration: backend must be a string")
    if config.get("externalSetMarkChain") is not None:
        if config.get("markMasqBit") is not None:
            raise InvalidConfig("Cannot specify externalSetMarkChain and markMasqBit")
        raise _wrong_backend(["externalSetMarkChain"])
    mark_bit = config.get("markMasqBit")
    if mark_bit is None:
        mark_bit = DEFAULT_MARK_BIT
    elif not is_int(mark_bit):
        raise DecodingFailure("failed to parse network configuration: markMasqBit must be a number")
    if not 0 <= mark_bit <= 31:
        raise InvalidConfig("MasqMarkBit must be between 0 and 31")
    conditions = {key: _conditions(config, key) for key in ("conditionsV4", "conditionsV6")}
    iptables_style = [key for key, value in conditions.items() if _iptables_syntax(value)]
    if iptables_style:
        raise _wrong_backend(iptables_style)
    if backend not in (None, "nftables"):
        if backend == _IPTABLES_ONLY:
            raise InvalidConfig(
                'backend "iptables" is not available: podnet\'s portmap runs on nftables'
            )
        raise InvalidConfig(f"unrecognized backend {backend!r}")
    return PortMapConfig(
        network=request.network_name,
        mappings=_mappings(config),
        snat=snat,
        masq_all=masq_all,
        mark_masq_bit=mark_bit,
        conditions_v4=conditions["conditionsV4"],
        conditions_v6=conditions["conditionsV6"],
    )


def _wrong_backend(keys: list[str]) -> InvalidConfig:
    return InvalidConfig(
        "nftables backend was requested but configuration contains iptables-specific "
        f"options [{' '.join(keys)}]"
    )


def _bool(config: dict[str, Any], key: str, default: bool) -> bool:
    value = config.get(key)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise DecodingFailure(f"failed to parse network configuration: {key} must be a boolean")
    return value


def _conditions(config: dict[str, Any], key: str) -> tuple[str, ...]:
    raw = config.get(key)
    if raw is None:
        return ()
    if not isinstance(raw, list) or not all(isinstance(item, str) for item in raw):
        raise DecodingFailure(f"failed to parse network configuration: {key} must be strings")
    for item in raw:
        # one expression of a rule: never a second command or a comment
        if any(c in item for c in ";\n#"):
            raise InvalidConfig(f"{key}: {item!r} is not one nftables expression")
    return tuple(item for item in raw if item.strip())


def _iptables_syntax(conditions: tuple[str, ...]) -> bool:
    """The reference's test: an iptables condition starts with "-" or "!", none of
    nftables' does."""
    return bool(conditions) and conditions[0][:1] in ("-", "!")


def _runtime_mappings(config: dict[str, Any]) -> Any:
    runtime = config.get("runtimeConfig")
    if runtime is None:
        return None
    if not isinstance(runtime, dict):
        raise DecodingFailure("failed to parse network configuration: runtimeConfig")
    return runtime.get("portMappings")


def _mappings(config: dict[str, Any]) -> tuple[PortMapping, ...]:
    raw = _runtime_mappings(config)
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise DecodingFailure("failed to parse network configuration: portMappings must be a list")
    seen: dict[tuple[str, int, IPAddress | None], PortMapping] = {}
    for index, item in enumerate(raw):
        mapping = _mapping(item, f"portMappings[{index}]")
        key = (mapping.protocol, mapping.host_port, mapping.host_ip)
        earlier = seen.get(key)
        if earlier is not None and earlier != mapping:
            raise InvalidConfig(
                f"{mapping.describe()} is mapped twice, to containerPort "
                f"{earlier.container_port} and {mapping.container_port}"
            )
        seen[key] = mapping
    return tuple(sorted(seen.values(), key=lambda m: (m.protocol, m.host_port, str(m.host_ip))))


def _go_field(item: dict[str, Any], key: str) -> Any:
    """A field as Go's encoding/json finds it: the exact key, else one that differs only
    in case. containerd (go-cni) sends its PortMapping struct without JSON tags, so its
    entries arrive as {"HostPort", "ContainerPort", "Protocol", "HostIP"}."""
    if key in item:
        return item[key]
    folded = key.casefold()
    return next((v for k, v in item.items() if k.casefold() == folded), None)


def _mapping(item: Any, what: str) -> PortMapping:
    if not isinstance(item, dict):
        raise DecodingFailure(f"failed to parse network configuration: {what} is no object")
    ports = {}
    for key, label in (("containerPort", "container"), ("hostPort", "host")):
        value = _go_field(item, key)
        value = 0 if value is None else value
        if not is_int(value):
            raise DecodingFailure(f"failed to parse network configuration: {what}.{key}")
        if value <= 0:
            raise InvalidConfig(f"Invalid {label} port number: {value}")
        if value > 65535:
            raise InvalidConfig(f"Invalid {label} port number: {value} (above 65535)")
        ports[key] = value
    protocol = _go_field(item, "protocol") or "tcp"
    if not isinstance(protocol, str) or protocol.lower() not in PROTOCOLS:
        raise InvalidConfig(f"{what}: protocol {protocol!r} is not one of tcp, udp, sctp")
    host_ip_text = _go_field(item, "hostIP") or ""
    if not isinstance(host_ip_text, str):
        raise DecodingFailure(f"failed to parse network configuration: {what}.hostIP")
    host_ip: IPAddress | None = None
    version = 0
    if host_ip_text:
        try:
            host_ip = ipaddress.ip_address(host_ip_text)
        except ValueError:
            raise InvalidConfig(f"{what}: invalid hostIP {host_ip_text!r}") from None
        version = host_ip.version
        if host_ip.is_unspecified:
            host_ip = None
    return PortMapping(
        host_port=ports["hostPort"],
        container_port=ports["containerPort"],
        protocol=protocol.lower(),
        host_ip=host_ip,
        host_ip_version=version,
    )


def pod_addresses(request: Request, result: Result | None) -> list[IPInterface]:
    """The first address of each family on the pod's interface (CNI_IFNAME in a sandbox),
    or on no interface at all, as the reference's parseConfig picks them."""
    if result is None:
        return []
    chosen: dict[int, IPInterface] = {}
    for ip_config in result.ips:
        address = ip_config.address
        if address.version in chosen:
            continue
        index = ip_config.interface
        if index is not None and 0 <= index < len(result.interfaces):
            interface = result.interfaces[index]
            if interface.name != request.ifname or not interface.sandbox:
                continue
        chosen[address.version] = address
    return [chosen[v] for v in sorted(chosen)]


def request_result(request: Request) -> Result | None:
    return prev_result(request.config)
