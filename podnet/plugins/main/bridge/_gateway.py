"""From IPAM's answer to what the bridge and the pod get (pure): every address belongs to
the container interface (index 2 of the result), a gateway defaults to the subnet's first
address, and a default gateway adds a default route per IP version unless IPAM already
gave one with a gateway."""

from __future__ import annotations

import ipaddress

from podnet.cni import Result, Route
from podnet.plugins.main.bridge._config import BridgeConfig

IPInterface = ipaddress.IPv4Interface | ipaddress.IPv6Interface

CONTAINER_INTERFACE_INDEX = 2  # result interfaces: [bridge, host veth, container]
_DEFAULT_ROUTE = {
    4: ipaddress.ip_network("0.0.0.0/0"),
    6: ipaddress.ip_network("::/0"),
}


def first_address(address: IPInterface) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """The address after the network address: 10.244.1.1 for 10.244.1.7/24."""
    return address.network.network_address + 1


def apply_gateways(result: Result, config: BridgeConfig) -> list[IPInterface]:
    """Complete `result` in place (interface index, gateways, default routes) and return
    the gateway addresses, with their subnet's prefix, that belong on the bridge."""
    bridge_addresses: list[IPInterface] = []
    has_default = {
        version: any(r.gw is not None and r.dst == dst for r in result.routes)
        for version, dst in _DEFAULT_ROUTE.items()
    }
    for ip in result.ips:
        ip.interface = CONTAINER_INTERFACE_INDEX
        if ip.gateway is None and config.is_gateway:
            ip.gateway = first_address(ip.address)
        if config.is_default_gateway and not has_default[ip.version]:
            result.routes.append(Route(dst=_DEFAULT_ROUTE[ip.version], gw=ip.gateway))
            has_default[ip.version] = True
        if config.is_gateway and ip.gateway is not None:
            gateway = ipaddress.ip_interface(f"{ip.gateway}/{ip.address.network.prefixlen}")
            if gateway not in bridge_addresses:
                bridge_addresses.append(gateway)
    return bridge_addresses
