"""/run/flannel/subnet.env, the node agent's word on this node's pod network, read as the
reference flannel CNI plugin reads it (flannel-io/cni-plugin flannel.go,
loadFlannelSubnetEnv):

    FLANNEL_NETWORK=10.244.0.0/16          cluster networks, comma-separated, duplicates dropped
    FLANNEL_SUBNET=10.244.1.1/24           this node's subnet (read as its network, 10.244.1.0/24)
    FLANNEL_IPV6_NETWORK=fd00:10:244::/56  the same for IPv6
    FLANNEL_IPV6_SUBNET=fd00:10:244:1::1/64
    FLANNEL_MTU=1450
    FLANNEL_IPMASQ=true                    the agent masquerades; anything but "true" is false

At least one network and one subnet (of either family), the MTU and IPMASQ are required;
other keys are ignored.
"""

from __future__ import annotations

import ipaddress

from podnet._record import FrozenRecord
from podnet.cni import InvalidConfig, IOFailure, TryAgainLater, read_file
from podnet.ipam import IPNetwork, parse_cidr

TYPE_CHECKING = False  # not typing's own: importing typing costs a plugin run in-process ~3 ms
if TYPE_CHECKING:
    from typing import Final

NOT_WRITTEN = (
    "the node agent has not written subnet.env: is it running, and does the node have a podCIDR?"
)
_REQUIRED_GROUPS = (
    ("FLANNEL_NETWORK", "FLANNEL_IPV6_NETWORK"),
    ("FLANNEL_SUBNET", "FLANNEL_IPV6_SUBNET"),
    ("FLANNEL_MTU",),
    ("FLANNEL_IPMASQ",),
)
_MAX_MTU = 2**32 - 1


class SubnetEnv(FrozenRecord):
    __slots__ = ("networks", "subnet", "ipv6_networks", "ipv6_subnet", "mtu", "ipmasq")

    def __init__(
        self,
        networks: tuple[IPNetwork, ...] = (),
        subnet: IPNetwork | None = None,
        ipv6_networks: tuple[IPNetwork, ...] = (),
        ipv6_subnet: IPNetwork | None = None,
        mtu: int = 0,
        ipmasq: bool = False,
    ) -> None:
        self.networks: Final = networks
        self.subnet: Final = subnet
        self.ipv6_networks: Final = ipv6_networks
        self.ipv6_subnet: Final = ipv6_subnet
        self.mtu: Final = mtu
        self.ipmasq: Final = ipmasq


def load_subnet_env(path: str) -> SubnetEnv:
    """The file at `path`; CNIError with a code that says what to do when it is not usable:
    11 (try again later) while it does not exist, 5 when unreadable, 7 when malformed."""
    try:
        text = read_file(path).decode("utf-8", errors="replace")
    except FileNotFoundError:
        raise TryAgainLater(NOT_WRITTEN, f"open {path}: no such file or directory") from None
    except OSError as exc:
        raise IOFailure(
            f"failed to load flannel 'subnet.env' file: open {path}: {exc.strerror}"
        ) from None
    try:
        return parse_subnet_env(text, path)
    except ValueError as exc:
        raise InvalidConfig(f"failed to load flannel 'subnet.env' file: {exc}") from None


def parse_subnet_env(text: str, path: str = "subnet.env") -> SubnetEnv:
    networks: dict[str, tuple[IPNetwork, ...]] = {}
    subnets: dict[str, IPNetwork] = {}
    mtu: int | None = None
    ipmasq: bool | None = None
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if key in ("FLANNEL_NETWORK", "FLANNEL_IPV6_NETWORK"):
            unique: list[IPNetwork] = []
            for cidr in value.split(","):
                network = _network(cidr, key, sep)
                if network not in unique:
                    unique.append(network)
            networks[key] = tuple(unique)
        elif key in ("FLANNEL_SUBNET", "FLANNEL_IPV6_SUBNET"):
            subnets[key] = _network(value, key, sep)
        elif key == "FLANNEL_MTU":
            if not value.isdigit() or int(value) > _MAX_MTU:
                raise ValueError(f'{key}: parsing "{value}": invalid syntax')
            mtu = int(value)
        elif key == "FLANNEL_IPMASQ":
            ipmasq = value == "true"
    present = {*networks, *subnets} | ({"FLANNEL_MTU"} if mtu is not None else set())
    present |= {"FLANNEL_IPMASQ"} if ipmasq is not None else set()
    missing = [
        name for group in _REQUIRED_GROUPS if not present.intersection(group) for name in group
    ]
    if missing or mtu is None or ipmasq is None:
        raise ValueError(f"{path} is missing {', '.join(missing)}")
    return SubnetEnv(
        networks=networks.get("FLANNEL_NETWORK", ()),
        subnet=subnets.get("FLANNEL_SUBNET"),
        ipv6_networks=networks.get("FLANNEL_IPV6_NETWORK", ()),
        ipv6_subnet=subnets.get("FLANNEL_IPV6_SUBNET"),
        mtu=mtu,
        ipmasq=ipmasq,
    )


def _network(text: str, key: str, sep: str) -> IPNetwork:
    """'10.244.1.1/24' -> 10.244.1.0/24, as Go's net.ParseCIDR returns the network."""
    try:
        if not sep:
            raise ValueError
        address, prefix = parse_cidr(text)
    except ValueError:
        raise ValueError(f"{key}: invalid CIDR address: {text}") from None
    return ipaddress.ip_network((address, prefix), strict=False)
