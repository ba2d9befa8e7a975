"""The node IPAM controller (kube-controller-manager's nodeipam range allocator): gives
every node a disjoint podCIDR from the cluster CIDR(s), on the podnet store."""

from podnet.nodeipam._cidrset import CIDROutOfRange, CIDRRangeFull, CIDRSet, IPNetwork, SubnetTooBig
from podnet.nodeipam._claims import CLAIMS_PREFIX, decode_claim
from podnet.nodeipam._config import ConfigError, NodeIPAMConfig, parse_config
from podnet.nodeipam._controller import CIDR_NOT_AVAILABLE, POD_CIDR_OUT_OF_RANGE, Controller
from podnet.nodeipam._metrics import MetricsServer, render_metrics
from podnet.nodeipam._plan import plan

__all__ = [
    "CIDR_NOT_AVAILABLE",
    "CLAIMS_PREFIX",
    "POD_CIDR_OUT_OF_RANGE",
    "CIDROutOfRange",
    "CIDRRangeFull",
    "CIDRSet",
    "ConfigError",
    "Controller",
    "IPNetwork",
    "MetricsServer",
    "NodeIPAMConfig",
    "SubnetTooBig",
    "decode_claim",
    "parse_config",
    "plan",
    "render_metrics",
]
