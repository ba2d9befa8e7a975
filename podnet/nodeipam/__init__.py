"""The node IPAM controller (kube-controller-manager's nodeipam range allocator): gives
every node a disjoint podCIDR from the cluster CIDR(s), through the Kubernetes API
(`KubeController`, one leader elected through a Lease) or on the podnet store directly
(`Controller`)."""

from podnet.nodeipam._cidrset import CIDROutOfRange, CIDRRangeFull, CIDRSet, IPNetwork, SubnetTooBig
from podnet.nodeipam._claims import CLAIMS_PREFIX, decode_claim
from podnet.nodeipam._config import ConfigError, NodeIPAMConfig, parse_config
from podnet.nodeipam._controller import CIDR_NOT_AVAILABLE, POD_CIDR_OUT_OF_RANGE, Controller
from podnet.nodeipam._kubeclient import kube_client
from podnet.nodeipam._kubecontroller import (
    CIDR_ASSIGNMENT_FAILED,
    CIDR_UPDATE_WORKERS,
    KubeController,
)
from podnet.nodeipam._leader import (
    DEFAULT_LEASE_NAME,
    DEFAULT_LEASE_NAMESPACE,
    LeaderElectionConfig,
    LeaderElectionConfigError,
    LeaderElector,
    default_identity,
)
from podnet.nodeipam._metrics import MetricsServer, render_metrics
from podnet.nodeipam._plan import plan

__all__ = [
    "CIDR_ASSIGNMENT_FAILED",
    "CIDR_NOT_AVAILABLE",
    "CIDR_UPDATE_WORKERS",
    "DEFAULT_LEASE_NAME",
    "DEFAULT_LEASE_NAMESPACE",
    "CLAIMS_PREFIX",
    "POD_CIDR_OUT_OF_RANGE",
    "CIDROutOfRange",
    "CIDRRangeFull",
    "CIDRSet",
    "ConfigError",
    "Controller",
    "IPNetwork",
    "KubeController",
    "LeaderElectionConfig",
    "LeaderElectionConfigError",
    "LeaderElector",
    "MetricsServer",
    "NodeIPAMConfig",
    "SubnetTooBig",
    "decode_claim",
    "default_identity",
    "kube_client",
    "parse_config",
    "plan",
    "render_metrics",
]
