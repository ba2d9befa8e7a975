"""Flag validation with kube-controller-manager's messages."""

from __future__ import annotations

import pytest

from podnet.nodeipam import ConfigError, parse_config


@pytest.mark.parametrize(
    ("kwargs", "cidrs", "masks"),
    [
        ({"cluster_cidr": "10.244.0.0/16"}, ["10.244.0.0/16"], [24]),
        ({"cluster_cidr": "fd00::/48"}, ["fd00::/48"], [64]),
        ({"cluster_cidr": "10.244.0.0/16", "node_cidr_mask_size": 26}, ["10.244.0.0/16"], [26]),
        ({"cluster_cidr": "fd00::/56", "node_cidr_mask_size": 60}, ["fd00::/56"], [60]),
        (
            {"cluster_cidr": "10.244.0.0/16", "node_cidr_mask_size_ipv4": 25},
            ["10.244.0.0/16"],
            [25],
        ),
        ({"cluster_cidr": "fd00::/56", "node_cidr_mask_size_ipv6": 62}, ["fd00::/56"], [62]),
        (
            {"cluster_cidr": "10.244.0.0/16,fd00::/56"},
            ["10.244.0.0/16", "fd00::/56"],
            [24, 64],
        ),
        (
            {
                "cluster_cidr": "fd00::/56, 10.244.0.0/16",
                "node_cidr_mask_size_ipv4": 26,
                "node_cidr_mask_size_ipv6": 60,
            },
            ["fd00::/56", "10.244.0.0/16"],
            [60, 26],
        ),
        ({"cluster_cidr": "10.244.1.7/16"}, ["10.244.0.0/16"], [24]),  # host bits masked
        ({"cluster_cidr": "10.244.0.0/24", "node_cidr_mask_size": 24}, ["10.244.0.0/24"], [24]),
    ],
)
def test_valid_flags(kwargs: dict, cidrs: list[str], masks: list[int]) -> None:  # type: ignore[type-arg]
    config = parse_config(**kwargs)
    assert [str(c) for c in config.cluster_cidrs] == cidrs
    assert list(config.node_mask_sizes) == masks


def test_service_ranges() -> None:
    config = parse_config("10.244.0.0/16", service_cluster_ip_range="10.96.0.0/12,fd01::/108")
    assert [str(c) for c in config.service_cidrs] == ["10.96.0.0/12", "fd01::/108"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"cluster_cidr": ""},
            "Controller: Must specify --cluster-cidr if --allocate-node-cidrs is set",
        ),
        ({"cluster_cidr": "10.244.0.0"}, "invalid CIDR address: 10.244.0.0"),
        ({"cluster_cidr": "10.244.0.0/33"}, "invalid CIDR address: 10.244.0.0/33"),
        ({"cluster_cidr": "10.244.0.0/16,bogus"}, "invalid CIDR address: bogus"),
        (
            {"cluster_cidr": "10.244.0.0/16,10.245.0.0/16"},
            "len of ClusterCIDRs==2 and they are not configured as dual stack "
            "(at least one from each IPFamily",
        ),
        (
            {"cluster_cidr": "10.244.0.0/16,fd00::/56,10.245.0.0/16"},
            "length of clusterCIDRs is:3 more than max allowed of 2",
        ),
        (
            {"cluster_cidr": "10.244.0.0/16,fd00::/56", "node_cidr_mask_size": 24},
            "usage of --node-cidr-mask-size is not allowed with dual-stack clusters",
        ),
        (
            {
                "cluster_cidr": "10.244.0.0/16",
                "node_cidr_mask_size": 24,
                "node_cidr_mask_size_ipv4": 24,
            },
            "usage of --node-cidr-mask-size-ipv4 and --node-cidr-mask-size-ipv6 is not allowed if "
            "--node-cidr-mask-size is set. For dual-stack clusters please unset it and use "
            "IPFamily specific flags",
        ),
        (
            {"cluster_cidr": "fd00::/56", "node_cidr_mask_size_ipv4": 24},
            "usage of --node-cidr-mask-size-ipv4 is not allowed for a single-stack IPv6 cluster",
        ),
        (
            {"cluster_cidr": "10.244.0.0/16", "node_cidr_mask_size_ipv6": 64},
            "usage of --node-cidr-mask-size-ipv6 is not allowed for a single-stack IPv4 cluster",
        ),
        (
            {"cluster_cidr": "10.244.0.0/25"},
            "Controller: Invalid --cluster-cidr, mask size of cluster CIDR must be less than or "
            "equal to --node-cidr-mask-size configured for CIDR family",
        ),
        (
            {"cluster_cidr": "10.244.0.0/16,fd00::/56", "node_cidr_mask_size_ipv6": 48},
            "Controller: Invalid --cluster-cidr, mask size of cluster CIDR must be less than or "
            "equal to --node-cidr-mask-size configured for CIDR family",
        ),
        ({"cluster_cidr": "fd00::/47"}, "New CIDR set failed; the node CIDR size is too big"),
        (
            {"cluster_cidr": "10.0.0.0/8", "node_cidr_mask_size": 33},
            "Controller: Invalid --node-cidr-mask-size 33 for 10.0.0.0/8: "
            "an IPv4 mask is at most 32",
        ),
        (
            {
                "cluster_cidr": "10.244.0.0/16",
                "service_cluster_ip_range": "10.96.0.0/12,fd01::/108,10.97.0.0/16",
            },
            "--service-cluster-ip-range can not contain more than two entries",
        ),
        (
            {
                "cluster_cidr": "10.244.0.0/16",
                "service_cluster_ip_range": "10.96.0.0/12,10.97.0.0/16",
            },
            "serviceCIDR and secondaryServiceCIDR are not dualstack (from different IPfamiles)",
        ),
        (
            {"cluster_cidr": "10.244.0.0/16", "service_cluster_ip_range": "nope"},
            "invalid --service-cluster-ip-range: invalid CIDR address: nope",
        ),
    ],
)
def test_invalid_flags(kwargs: dict, message: str) -> None:  # type: ignore[type-arg]
    with pytest.raises(ConfigError) as caught:
        parse_config(**kwargs)
    assert str(caught.value) == message
