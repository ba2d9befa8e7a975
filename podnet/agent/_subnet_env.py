"""`/run/flannel/subnet.env`, what the flannel CNI plugin reads to build its bridge config.

Same keys, order and value forms as flannel's WriteSubnetFile, e.g.

    FLANNEL_NETWORK=10.244.0.0/16
    FLANNEL_SUBNET=10.244.1.1/24        (the lease's first usable address, not its network)
    FLANNEL_MTU=1450
    FLANNEL_IPMASQ=true

with FLANNEL_IPV6_NETWORK / FLANNEL_IPV6_SUBNET after the IPv4 pair when IPv6 is enabled.
It is written atomically (mode 0644): a plugin never reads half a file, and a missing file
always means "the agent is not ready yet", never "it crashed while writing".
"""

from __future__ import annotations

from ipaddress import IPv4Network, IPv6Network

from podnet.agent._config import NetworkConfig
from podnet.cni import atomic_write

DEFAULT_SUBNET_FILE = "/run/flannel/subnet.env"


def _first_usable(subnet: IPv4Network | IPv6Network) -> str:
    return f"{subnet.network_address + 1}/{subnet.prefixlen}"


def render_subnet_env(
    config: NetworkConfig,
    *,
    subnet: IPv4Network | None,
    mtu: int,
    ip_masq: bool,
    ipv6_subnet: IPv6Network | None = None,
) -> str:
    lines = []
    if config.enable_ipv4:
        if config.network is None or subnet is None:
            raise ValueError("IPv4 is enabled but the network or the lease subnet is missing")
        lines.append(f"FLANNEL_NETWORK={config.network}")
        lines.append(f"FLANNEL_SUBNET={_first_usable(subnet)}")
    if config.enable_ipv6:
        if config.ipv6_network is None or ipv6_subnet is None:
            raise ValueError("IPv6 is enabled but the network or the lease subnet is missing")
        lines.append(f"FLANNEL_IPV6_NETWORK={config.ipv6_network}")
        lines.append(f"FLANNEL_IPV6_SUBNET={_first_usable(ipv6_subnet)}")
    lines.append(f"FLANNEL_MTU={mtu}")
    lines.append(f"FLANNEL_IPMASQ={'true' if ip_masq else 'false'}")
    return "".join(line + "\n" for line in lines)


def write_subnet_env(
    path: str,
    config: NetworkConfig,
    *,
    subnet: IPv4Network | None,
    mtu: int,
    ip_masq: bool,
    ipv6_subnet: IPv6Network | None = None,
) -> None:
    text = render_subnet_env(
        config, subnet=subnet, mtu=mtu, ip_masq=ip_masq, ipv6_subnet=ipv6_subnet
    )
    atomic_write(path, text.encode(), mode=0o644, dir_mode=0o755)
