"""The controller's flags, validated as kube-controller-manager validates them, with its
messages (cmd/kube-controller-manager/app/core.go `validateCIDRs`, `setNodeCIDRMaskSizes`;
node_ipam_controller.go; cidrset.go; options/nodeipamcontroller.go).

    --cluster-cidr                  one CIDR, or two of different families (dual-stack)
    --node-cidr-mask-size           single-stack only
    --node-cidr-mask-size-ipv4/6    per family; defaults /24 and /64
    --service-cluster-ip-range      up to two CIDRs of different families; node blocks that
                                    overlap them are never handed out

Where kube-controller-manager is lax we are not: an unparsable service range is an error
here (KCM logs it and carries on without it), and so is a mask wider than the address.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from podnet.nodeipam._cidrset import CLUSTER_SUBNET_MAX_DIFF, IPNetwork

DEFAULT_NODE_MASK_IPV4 = 24
DEFAULT_NODE_MASK_IPV6 = 64


class ConfigError(ValueError):
    pass


@dataclass(frozen=True)
class NodeIPAMConfig:
    cluster_cidrs: tuple[IPNetwork, ...]
    node_mask_sizes: tuple[int, ...]
    service_cidrs: tuple[IPNetwork, ...] = ()

    @property
    def dual_stack(self) -> bool:
        return len(self.cluster_cidrs) > 1


def parse_cidrs(text: str) -> list[IPNetwork]:
    """Comma-separated CIDRs; host bits are masked off as Go's net.ParseCIDR does."""
    cidrs = []
    for item in text.strip().split(","):
        item = item.strip()
        if "/" not in item:
            raise ConfigError(f"invalid CIDR address: {item}")
        try:
            cidrs.append(ipaddress.ip_network(item, strict=False))
        except ValueError as exc:
            raise ConfigError(f"invalid CIDR address: {item}") from exc
    return cidrs


def _is_dual_stack(cidrs: list[IPNetwork]) -> bool:
    return {c.version for c in cidrs} == {4, 6}


def parse_config(
    cluster_cidr: str | None,
    *,
    node_cidr_mask_size: int | None = None,
    node_cidr_mask_size_ipv4: int | None = None,
    node_cidr_mask_size_ipv6: int | None = None,
    service_cluster_ip_range: str | None = None,
) -> NodeIPAMConfig:
    """Validate the flags; ConfigError with kube-controller-manager's message otherwise.
    A mask of 0 means "not set", as in KCM."""
    if not cluster_cidr or not cluster_cidr.strip():
        raise ConfigError("Controller: Must specify --cluster-cidr if --allocate-node-cidrs is set")
    clusters = parse_cidrs(cluster_cidr)
    if len(clusters) > 1 and not _is_dual_stack(clusters):
        raise ConfigError(
            f"len of ClusterCIDRs=={len(clusters)} and they are not configured as dual stack "
            "(at least one from each IPFamily"
        )
    if len(clusters) > 2:
        raise ConfigError(f"length of clusterCIDRs is:{len(clusters)} more than max allowed of 2")

    masks = _node_mask_sizes(
        clusters, node_cidr_mask_size or 0, node_cidr_mask_size_ipv4 or 0,
        node_cidr_mask_size_ipv6 or 0,
    )  # fmt: skip
    for cidr, mask in zip(clusters, masks, strict=True):
        if cidr.prefixlen > mask:
            raise ConfigError(
                "Controller: Invalid --cluster-cidr, mask size of cluster CIDR must be less "
                "than or equal to --node-cidr-mask-size configured for CIDR family"
            )
        if mask > cidr.max_prefixlen:
            raise ConfigError(
                f"Controller: Invalid --node-cidr-mask-size {mask} for {cidr}: an IPv"
                f"{cidr.version} mask is at most {cidr.max_prefixlen}"
            )
        if cidr.version == 6 and mask - cidr.prefixlen > CLUSTER_SUBNET_MAX_DIFF:
            raise ConfigError("New CIDR set failed; the node CIDR size is too big")

    services: list[IPNetwork] = []
    if service_cluster_ip_range and service_cluster_ip_range.strip():
        if len(service_cluster_ip_range.split(",")) > 2:
            raise ConfigError("--service-cluster-ip-range can not contain more than two entries")
        try:
            services = parse_cidrs(service_cluster_ip_range)
        except ConfigError as exc:
            raise ConfigError(f"invalid --service-cluster-ip-range: {exc}") from exc
        if len(services) == 2 and not _is_dual_stack(services):
            raise ConfigError(
                "serviceCIDR and secondaryServiceCIDR are not dualstack (from different IPfamiles)"
            )
    return NodeIPAMConfig(tuple(clusters), tuple(masks), tuple(services))


def _node_mask_sizes(clusters: list[IPNetwork], mask: int, mask_v4: int, mask_v6: int) -> list[int]:
    """setNodeCIDRMaskSizes: one node mask per cluster CIDR."""
    for name, value in (
        ("--node-cidr-mask-size", mask),
        ("--node-cidr-mask-size-ipv4", mask_v4),
        ("--node-cidr-mask-size-ipv6", mask_v6),
    ):
        if value < 0:
            raise ConfigError(f"{name} must not be negative")

    def per_cluster(v4: int, v6: int) -> list[int]:
        return [v6 if cidr.version == 6 else v4 for cidr in clusters]

    ipv4, ipv6 = DEFAULT_NODE_MASK_IPV4, DEFAULT_NODE_MASK_IPV6
    if len(clusters) > 1:
        if mask:
            raise ConfigError(
                "usage of --node-cidr-mask-size is not allowed with dual-stack clusters"
            )
        return per_cluster(mask_v4 or ipv4, mask_v6 or ipv6)
    if mask:
        if mask_v4 or mask_v6:
            raise ConfigError(
                "usage of --node-cidr-mask-size-ipv4 and --node-cidr-mask-size-ipv6 is not "
                "allowed if --node-cidr-mask-size is set. For dual-stack clusters please unset "
                "it and use IPFamily specific flags"
            )
        return per_cluster(mask, mask)
    single_stack_ipv6 = clusters[0].version == 6
    if mask_v4:
        if single_stack_ipv6:
            raise ConfigError(
                "usage of --node-cidr-mask-size-ipv4 is not allowed for a single-stack IPv6 cluster"
            )
        ipv4 = mask_v4
    if mask_v6:
        if not single_stack_ipv6:
            raise ConfigError(
                "usage of --node-cidr-mask-size-ipv6 is not allowed for a single-stack IPv4 cluster"
            )
        ipv6 = mask_v6
    return per_cluster(ipv4, ipv6)
