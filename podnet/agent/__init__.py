"""The node agent: flanneld's job, plus the warm executor of CNI requests.

flanneld's job: a node's lease becomes subnet.env, an overlay to every other node (vxlan or
host-gw), masquerade rules, and kernel tables kept in line with the other nodes' leases.
Beyond flanneld: a garbage collector that frees what the runtime's forgotten sandboxes
left behind, with the valid set taken from the runtime over CRI."""

from podnet.agent._cni_server import DEFAULT_SOCKET, CNIServer
from podnet.agent._config import BackendConfig, ConfigError, NetworkConfig
from podnet.agent._daemon import (
    DEFAULT_CNI_DATA_DIR,
    DEFAULT_NET_CONFIG_PATH,
    Agent,
    DaemonSettings,
    read_net_conf,
)
from podnet.agent._entries import Entries, Plan, plan, plan_removal
from podnet.agent._gate import Gate, GateBusy
from podnet.agent._gc import (
    CACHED,
    DEFAULT_GC_GRACE,
    DEFAULT_GC_INTERVAL,
    RESERVATION,
    SCRATCH,
    Footprint,
    GarbageCollector,
    InProcessExec,
    footprints,
)
from podnet.agent._hostgw import HostGwBackend
from podnet.agent._iface import (
    ExternalInterface,
    InterfaceError,
    InterfaceOptions,
    choose_interface,
    interface_options,
)
from podnet.agent._kernel import ROUTE_PROTO, RtnlTables
from podnet.agent._kube_client import kube_client
from podnet.agent._kube_source import KubeNode, KubeNodeSource
from podnet.agent._lease import (
    BACKEND_TYPE,
    Lease,
    LeaseError,
    VxlanData,
    ipv4_pod_cidr,
    lease_from_node,
    pod_cidrs_by_family,
)
from podnet.agent._loop import AgentLoop, AgentSettings, NodeSource, lease_of
from podnet.agent._masq import (
    MasqueradeError,
    apply_ruleset,
    ensure_ruleset,
    masq_counters,
    remove_ruleset,
    render_ruleset,
)
from podnet.agent._node import NodeNetwork, NodeSettings
from podnet.agent._reconcile import Reconciler
from podnet.agent._registry import BACKEND_TYPES, DEFAULT_BACKEND
from podnet.agent._subnet_env import (
    DEFAULT_SUBNET_FILE,
    render_subnet_env,
    write_subnet_env,
)
from podnet.agent._traces import RequestLog
from podnet.agent._vtep_mac import vtep_mac
from podnet.agent._vxlan import ENCAP_OVERHEAD, ENCAP_OVERHEAD_V6, VxlanBackend, VxlanDevice
from podnet.agent._watcher import EventKind, LeaseEvent, LeaseWatcher, added, removed

__all__ = [
    "BACKEND_TYPE",
    "BACKEND_TYPES",
    "ENCAP_OVERHEAD",
    "ENCAP_OVERHEAD_V6",
    "HostGwBackend",
    "ExternalInterface",
    "InterfaceError",
    "InterfaceOptions",
    "choose_interface",
    "interface_options",
    "DEFAULT_BACKEND",
    "DEFAULT_NET_CONFIG_PATH",
    "KubeNode",
    "KubeNodeSource",
    "kube_client",
    "read_net_conf",
    "Agent",
    "DEFAULT_CNI_DATA_DIR",
    "DaemonSettings",
    "AgentLoop",
    "AgentSettings",
    "BackendConfig",
    "CACHED",
    "CNIServer",
    "ConfigError",
    "DEFAULT_GC_GRACE",
    "DEFAULT_GC_INTERVAL",
    "DEFAULT_SOCKET",
    "DEFAULT_SUBNET_FILE",
    "Entries",
    "EventKind",
    "Footprint",
    "GarbageCollector",
    "Gate",
    "GateBusy",
    "InProcessExec",
    "Lease",
    "LeaseError",
    "LeaseEvent",
    "LeaseWatcher",
    "MasqueradeError",
    "NetworkConfig",
    "NodeNetwork",
    "NodeSettings",
    "NodeSource",
    "Plan",
    "RESERVATION",
    "ROUTE_PROTO",
    "Reconciler",
    "RequestLog",
    "SCRATCH",
    "RtnlTables",
    "VxlanBackend",
    "VxlanDevice",
    "VxlanData",
    "added",
    "apply_ruleset",
    "footprints",
    "ipv4_pod_cidr",
    "pod_cidrs_by_family",
    "lease_from_node",
    "lease_of",
    "masq_counters",
    "ensure_ruleset",
    "plan",
    "plan_removal",
    "remove_ruleset",
    "removed",
    "render_ruleset",
    "render_subnet_env",
    "vtep_mac",
    "write_subnet_env",
]
