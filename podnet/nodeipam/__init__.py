"""The node IPAM controller (kube-controller-manager's nodeipam range allocator): gives
every node a disjoint podCIDR from the cluster CIDR(s), on the podnet store."""

from podnet.nodeipam._cidrset import (
    CIDROutOfRange,
    CIDRRangeFull,
    CIDRSet,
    CIDRSetError,
    IPNetwork,
    SubnetTooBig,
)
from podnet.nodeipam._claims import CLAIMS_PREFIX, Claim, claim_key, decode_claim
from podnet.nodeipam._config import (
    DEFAULT_NODE_MASK_IPV4,
    DEFAULT_NODE_MASK_IPV6,
    ConfigError,
    NodeIPAMConfig,
    parse_cidrs,
    parse_config,
)
from podnet.nodeipam._controller import (
    CIDR_ASSIGNMENT_FAILED,
    CIDR_NOT_AVAILABLE,
    COMPONENT,
    POD_CIDR_OUT_OF_RANGE,
    Controller,
    Counters,
)
from podnet.nodeipam._metrics import MetricsServer, render_metrics
from podnet.nodeipam._plan import PlanEntry, plan

__all__ = [
    "CIDR_ASSIGNMENT_FAILED",
    "CIDR_NOT_AVAILABLE",
    "CLAIMS_PREFIX",
    "COMPONENT",
    "DEFAULT_NODE_MASK_IPV4",
    "DEFAULT_NODE_MASK_IPV6",
    "POD_CIDR_OUT_OF_RANGE",
    "CIDROutOfRange",
    "CIDRRangeFull",
    "CIDRSet",
    "CIDRSetError",
    "Claim",
    "ConfigError",
    "Controller",
    "Counters",
    "IPNetwork",
    "MetricsServer",
    "NodeIPAMConfig",
    "PlanEntry",
    "SubnetTooBig",
    "claim_key",
    "decode_claim",
    "parse_cidrs",
    "parse_config",
    "plan",
    "render_metrics",
]
