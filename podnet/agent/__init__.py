"""The node agent: flanneld's job, plus the warm executor of CNI requests.

flanneld's job: a node's lease becomes subnet.env, an overlay to every other node (vxlan or
host-gw), masquerade rules, and kernel tables kept in line with the other nodes' leases.
Beyond flanneld: a garbage collector that frees what the runtime's forgotten sandboxes
left behind, with the valid set taken from the runtime over CRI."""

from podnet.agent._backend import Backend, BackendSetup, LocalNode, public_address
from podnet.agent._cni_server import DEFAULT_SOCKET, CNIServer
from podnet.agent._config import BACKEND_TYPES, BackendConfig, ConfigError, NetworkConfig
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
    GCRound,
    InProcessExec,
    footprints,
    state_dirs,
)
from podnet.agent._hostgw import HostGwBackend, setup_host_gw
from podnet.agent._kernel import ROUTE_PROTO, KernelTables, RtnlTables
from podnet.agent._lease import (
    ANNOTATION_PREFIX,
    BACKEND_DATA,
    BACKEND_TYPE,
    KUBE_SUBNET_MANAGER,
    PUBLIC_IP,
    Lease,
    LeaseError,
    VxlanData,
    ipv4_pod_cidr,
    lease_from_node,
)
from podnet.agent._loop import (
    DEFAULT_RESYNC,
    AgentLoop,
    AgentSettings,
    NodeChange,
    NodeObject,
    NodeSource,
    NodeWatch,
    Stopped,
    lease_of,
)
from podnet.agent._masq import (
    TABLE,
    MasqueradeError,
    apply_ruleset,
    ensure_ruleset,
    masq_counters,
    remove_ruleset,
    render_ruleset,
)
from podnet.agent._node import NodeNetwork, NodeSettings
from podnet.agent._reconcile import Outcome, Reconciler
from podnet.agent._registry import BACKENDS, setup_backend
from podnet.agent._subnet_env import (
    DEFAULT_SUBNET_FILE,
    read_subnet_env,
    render_subnet_env,
    write_subnet_env,
)
from podnet.agent._vtep_mac import vtep_mac
from podnet.agent._vxlan import ENCAP_OVERHEAD, VxlanBackend, device_name, setup_vxlan
from podnet.agent._watcher import EventKind, LeaseEvent, LeaseWatcher, added, removed

__all__ = [
    "ANNOTATION_PREFIX",
    "AgentLoop",
    "AgentSettings",
    "BACKENDS",
    "BACKEND_DATA",
    "BACKEND_TYPE",
    "BACKEND_TYPES",
    "Backend",
    "BackendConfig",
    "BackendSetup",
    "CACHED",
    "CNIServer",
    "ConfigError",
    "DEFAULT_GC_GRACE",
    "DEFAULT_GC_INTERVAL",
    "DEFAULT_RESYNC",
    "DEFAULT_SOCKET",
    "DEFAULT_SUBNET_FILE",
    "ENCAP_OVERHEAD",
    "Entries",
    "EventKind",
    "Footprint",
    "GCRound",
    "GarbageCollector",
    "Gate",
    "GateBusy",
    "HostGwBackend",
    "InProcessExec",
    "KUBE_SUBNET_MANAGER",
    "KernelTables",
    "Lease",
    "LeaseError",
    "LeaseEvent",
    "LeaseWatcher",
    "LocalNode",
    "MasqueradeError",
    "NetworkConfig",
    "NodeChange",
    "NodeNetwork",
    "NodeObject",
    "NodeSettings",
    "NodeSource",
    "NodeWatch",
    "Outcome",
    "PUBLIC_IP",
    "Plan",
    "RESERVATION",
    "ROUTE_PROTO",
    "Reconciler",
    "SCRATCH",
    "RtnlTables",
    "Stopped",
    "TABLE",
    "VxlanBackend",
    "VxlanData",
    "added",
    "apply_ruleset",
    "device_name",
    "footprints",
    "ipv4_pod_cidr",
    "lease_from_node",
    "lease_of",
    "masq_counters",
    "ensure_ruleset",
    "plan",
    "plan_removal",
    "public_address",
    "read_subnet_env",
    "remove_ruleset",
    "removed",
    "render_ruleset",
    "render_subnet_env",
    "setup_backend",
    "setup_host_gw",
    "setup_vxlan",
    "state_dirs",
    "vtep_mac",
    "write_subnet_env",
]
