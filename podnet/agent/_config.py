"""The cluster network configuration, in flannel's net-conf.json shape:

    {"Network": "10.244.0.0/16", "Backend": {"Type": "vxlan", "VNI": 1, "DirectRouting": false}}

Keys are matched case-insensitively, as Go's encoding/json does for flannel's structs.
The backends are those of _registry.BACKENDS; an absent Backend means DEFAULT_BACKEND.
IPv6 as flannel's: `"EnableIPv6": true` with `"IPv6Network"` adds the IPv6 family
(dual-stack), and `"EnableIPv4": false` leaves IPv6 only. `SubnetLen`/`IPv6SubnetLen` size
the node subnets flannel's own subnet manager leases; with nodes' podCIDRs from the
Kubernetes API (nodeipam's --node-cidr-mask-size-ipv4/-ipv6) they are read and kept, as
flanneld's --kube-subnet-mgr does.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from ipaddress import IPv4Network, IPv6Network
from typing import Any

from podnet.agent._registry import BACKEND_TYPES, DEFAULT_BACKEND
from podnet.cni import is_int
from podnet.netlink import VXLAN_PORT


class ConfigError(ValueError):
    """The network configuration cannot be used; the message names the key."""


@dataclass(frozen=True)
class BackendConfig:
    type: str = DEFAULT_BACKEND
    vni: int = 1
    port: int = VXLAN_PORT
    mtu: int | None = None  # None: the underlay interface's MTU
    direct_routing: bool = False
    learning: bool = False


@dataclass(frozen=True)
class NetworkConfig:
    network: IPv4Network | None
    backend: BackendConfig = field(default_factory=BackendConfig)
    enable_ipv4: bool = True
    enable_ipv6: bool = False
    ipv6_network: IPv6Network | None = None
    subnet_len: int = 0  # 0: unset
    ipv6_subnet_len: int = 0

    @classmethod
    def from_json(cls, text: str | bytes) -> NetworkConfig:
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise ConfigError(f"network config is not JSON: {exc}") from None
        return cls.from_dict(data)

    @classmethod
    def from_dict(cls, data: Any) -> NetworkConfig:
        if not isinstance(data, Mapping):
            raise ConfigError("network config must be a JSON object")
        keys = {str(key).lower(): value for key, value in data.items()}
        enable_ipv4 = _bool(keys, "enableipv4", "EnableIPv4", True)
        enable_ipv6 = _bool(keys, "enableipv6", "EnableIPv6", False)
        network = _network(keys, "network", "Network", IPv4Network)
        ipv6_network = _network(keys, "ipv6network", "IPv6Network", IPv6Network)
        if enable_ipv4 and network is None:
            raise ConfigError("please define a correct Network parameter in the network config")
        if enable_ipv6 and ipv6_network is None:
            raise ConfigError("please define a correct IPv6Network parameter in the network config")
        if not enable_ipv4 and not enable_ipv6:
            raise ConfigError("EnableIPv4 and EnableIPv6 are both false: enable at least one")
        subnet_len = _subnet_len(keys, "subnetlen", "SubnetLen", 32)
        ipv6_subnet_len = _subnet_len(keys, "ipv6subnetlen", "IPv6SubnetLen", 128)
        return cls(
            network=network,
            backend=_backend(keys.get("backend")),
            enable_ipv4=enable_ipv4,
            enable_ipv6=enable_ipv6,
            ipv6_network=ipv6_network,
            subnet_len=subnet_len,
            ipv6_subnet_len=ipv6_subnet_len,
        )


def _bool(keys: Mapping[str, Any], key: str, name: str, default: bool) -> bool:
    value = keys.get(key, default)
    if not isinstance(value, bool):
        raise ConfigError(f"{name} must be true or false, not {value!r}")
    return value


def _subnet_len(keys: Mapping[str, Any], key: str, name: str, longest: int) -> int:
    """0 when unset. flanneld checks the sizes only when it leases subnets itself (its
    CheckNetworkConfig: not with --kube-subnet-mgr), so only the type is checked here."""
    value = keys.get(key, 0)
    if not is_int(value) or not 0 <= value <= longest:
        raise ConfigError(f"{name} must be an integer in 0..{longest}, not {value!r}")
    return int(value)


def _int(keys: Mapping[str, Any], key: str, name: str, default: int, low: int, high: int) -> int:
    value = keys.get(key, default)
    if not is_int(value) or not low <= value <= high:
        raise ConfigError(f"Backend.{name} must be an integer in {low}..{high}, not {value!r}")
    return value


def _network(
    keys: Mapping[str, Any],
    key: str,
    name: str,
    kind: type[IPv4Network] | type[IPv6Network],
) -> Any:
    value = keys.get(key)
    if value in (None, ""):
        return None
    try:
        return kind(value)
    except (ValueError, TypeError):
        raise ConfigError(f"{name} {value!r} is not a valid network") from None


def _backend(raw: Any) -> BackendConfig:
    if raw is None:
        return BackendConfig()
    if not isinstance(raw, Mapping):
        raise ConfigError("Backend must be a JSON object")
    keys = {str(key).lower(): value for key, value in raw.items()}
    backend_type = keys.get("type", DEFAULT_BACKEND)
    if backend_type not in BACKEND_TYPES:
        raise ConfigError(
            f"Backend.Type {backend_type!r} is not supported (use {' or '.join(BACKEND_TYPES)})"
        )
    mtu = keys.get("mtu")
    return BackendConfig(
        type=backend_type,
        vni=_int(keys, "vni", "VNI", 1, 0, (1 << 24) - 1),
        port=_int(keys, "port", "Port", VXLAN_PORT, 0, 65535) or VXLAN_PORT,
        mtu=None if mtu in (None, 0) else _int(keys, "mtu", "MTU", 0, 68, 65535),
        direct_routing=_bool(keys, "directrouting", "Backend.DirectRouting", False),
        learning=_bool(keys, "learning", "Backend.Learning", False),
    )
