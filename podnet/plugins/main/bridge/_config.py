"""The bridge plugin's network configuration, read and checked once (pure, no I/O)."""

from __future__ import annotations

from podnet._record import FrozenRecord
from podnet.cni import DNS, InvalidConfig, Request, UnsupportedField, is_int, parse_cni_args

TYPE_CHECKING = False  # not typing's own: importing typing costs a plugin run in-process ~3 ms
if TYPE_CHECKING:
    from typing import Any, Final

DEFAULT_BRIDGE = "cni0"
MAX_VLAN = 4094

# A MAC as the reference accepts it, six pairs of hex digits joined by ":" (checked by
# hand: `re` and the `enum` it imports cost a plugin run in-process ~2 ms).
_HEX_DIGITS = frozenset("0123456789abcdefABCDEF")
# CNI_ARGS keys the reference bridge knows (types.CommonArgs + MAC); others need IgnoreUnknown.
_KNOWN_ARGS = ("IgnoreUnknown", "MAC")
# nft caps comments at 128 bytes; longer owner tags are hashed.
_MAX_TAG = 128


class BridgeConfig(FrozenRecord):
    __slots__ = (
        "network",
        "bridge",
        "is_gateway",
        "is_default_gateway",
        "force_address",
        "ip_masq",
        "mtu",
        "hairpin",
        "promisc",
        "vlan",
        "preserve_default_vlan",
        "enable_dad",
        "port_isolation",
        "disable_container_interface",
        "mac",
        "ipam_type",
        "dns",
    )

    def __init__(
        self,
        network: str,
        bridge: str = DEFAULT_BRIDGE,
        is_gateway: bool = False,
        is_default_gateway: bool = False,
        force_address: bool = False,
        ip_masq: bool = False,
        mtu: int = 0,
        hairpin: bool = False,
        promisc: bool = False,
        vlan: int = 0,
        preserve_default_vlan: bool = False,
        enable_dad: bool = False,
        port_isolation: bool = False,
        disable_container_interface: bool = False,
        mac: str = "",
        ipam_type: str = "",
        dns: DNS | None = None,
    ) -> None:
        self.network: Final = network
        self.bridge: Final = bridge
        self.is_gateway: Final = is_gateway
        self.is_default_gateway: Final = is_default_gateway
        self.force_address: Final = force_address
        self.ip_masq: Final = ip_masq
        self.mtu: Final = mtu
        self.hairpin: Final = hairpin
        self.promisc: Final = promisc
        self.vlan: Final = vlan
        self.preserve_default_vlan: Final = preserve_default_vlan
        self.enable_dad: Final = enable_dad
        self.port_isolation: Final = port_isolation
        self.disable_container_interface: Final = disable_container_interface
        self.mac: Final = mac  # runtime MAC for the container interface
        self.ipam_type: Final = ipam_type
        self.dns: Final[DNS] = DNS() if dns is None else dns  # never mutated

    @property
    def layer3(self) -> bool:
        return self.ipam_type != ""


def _typed(config: dict[str, Any], key: str, kind: type, default: Any) -> Any:
    value = config.get(key, default)
    if value is None:
        return default
    # bool is an int in Python; JSON true must not pass as a number, nor 1 as a flag
    if not (is_int(value) if kind is int else isinstance(value, kind)):
        expected = "boolean" if kind is bool else kind.__name__
        raise InvalidConfig(f"failed to load netconf: {key} must be a {expected}")
    return value


def _runtime_mac(request: Request, config: dict[str, Any]) -> str:
    """MAC from CNI_ARGS MAC=, then args.cni.mac, then runtimeConfig.mac: the last set wins."""
    mac = ""
    env_args = parse_cni_args(request.args)
    ignore_unknown = env_args.get("IgnoreUnknown", "").lower() in ("1", "true")
    unknown = [k for k in env_args if k not in _KNOWN_ARGS]
    if unknown and not ignore_unknown:
        raise InvalidConfig(f'ARGS: can not set unknown field "{unknown[0]}"')
    mac = env_args.get("MAC", "") or mac
    args = config.get("args")
    if isinstance(args, dict) and isinstance(args.get("cni"), dict):
        mac = str(args["cni"].get("mac") or "") or mac
    runtime = config.get("runtimeConfig")
    if isinstance(runtime, dict):
        mac = str(runtime.get("mac") or "") or mac
    return mac.lower()


def parse_config(request: Request) -> BridgeConfig:
    config = request.config
    ipam = config.get("ipam")
    if ipam is None:
        ipam = {}
    if not isinstance(ipam, dict):
        raise InvalidConfig("failed to load netconf: ipam must be an object")
    ipam_type = ipam.get("type", "")
    if not isinstance(ipam_type, str):
        raise InvalidConfig("failed to load netconf: ipam.type must be a string")
    vlan = _typed(config, "vlan", int, 0)
    if vlan < 0 or vlan > MAX_VLAN:
        raise InvalidConfig(f"invalid VLAN ID {vlan} (must be between 0 and {MAX_VLAN})")
    for key in ("vlanTrunk", "macspoofchk"):
        if config.get(key):
            raise UnsupportedField(f"{key} is not supported by podnet's bridge", f"{key}")
    backend = config.get("ipMasqBackend")
    if backend not in (None, "nftables"):
        raise UnsupportedField(
            f"ipMasqBackend {backend!r} is not supported: podnet masquerades with nftables",
            "ipMasqBackend",
        )
    bridge = _typed(config, "bridge", str, DEFAULT_BRIDGE) or DEFAULT_BRIDGE
    is_default_gateway = _typed(config, "isDefaultGateway", bool, False)
    parsed = BridgeConfig(
        network=request.network_name,
        bridge=bridge,
        # a default gateway has to be a gateway
        is_gateway=_typed(config, "isGateway", bool, False) or is_default_gateway,
        is_default_gateway=is_default_gateway,
        force_address=_typed(config, "forceAddress", bool, False),
        ip_masq=_typed(config, "ipMasq", bool, False),
        mtu=_typed(config, "mtu", int, 0),
        hairpin=_typed(config, "hairpinMode", bool, False),
        promisc=_typed(config, "promiscMode", bool, False),
        vlan=vlan,
        preserve_default_vlan=_typed(config, "preserveDefaultVlan", bool, False),
        enable_dad=_typed(config, "enabledad", bool, False),
        port_isolation=_typed(config, "portIsolation", bool, False),
        disable_container_interface=_typed(config, "disableContainerInterface", bool, False),
        mac=_runtime_mac(request, config),
        ipam_type=ipam_type,
        dns=DNS.from_json(config.get("dns")),
    )
    if parsed.mtu < 0:
        raise InvalidConfig(f"invalid MTU {parsed.mtu}")
    return parsed


def validate_for_add(config: BridgeConfig) -> None:
    """What only ADD refuses (DEL must still clean up after such a config), with the
    reference's words."""
    if config.layer3 and config.disable_container_interface:
        raise InvalidConfig("cannot use IPAM when DisableContainerInterface flag is set")
    if config.hairpin and config.promisc:
        raise InvalidConfig("cannot set hairpin mode and promiscuous mode at the same time")
    if config.mac and not _is_mac(config.mac):
        raise InvalidConfig(f"invalid MAC address {config.mac!r}")


def _is_mac(text: str) -> bool:
    pairs = text.split(":")
    return len(pairs) == 6 and all(len(p) == 2 and _HEX_DIGITS.issuperset(p) for p in pairs)


def owner_tag(container_id: str, ifname: str) -> str:
    """Who an nftables element belongs to: '<containerID>/<ifname>', hashed when too long."""
    tag = f"{container_id}/{ifname}"
    if len(tag) <= _MAX_TAG:
        return tag
    import hashlib  # rarely needed, and ~4 ms to import (OpenSSL)

    return "sha256:" + hashlib.sha256(tag.encode()).hexdigest()
