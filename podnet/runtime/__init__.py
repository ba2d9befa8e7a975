"""The container-runtime side: what libcni and containerd's CRI plugin do for a pod.

`CNI` runs a network config list (ADD/CHECK/DEL/GC/STATUS, validation, the libcni
result cache) over an injected `Exec`; `scan_conf_dir` finds the lists as containerd
does; `PodRuntime` creates pod sandboxes (netns, lo, ADD on eth0, pod IP) and records them
so GC knows which attachments are still in use.
"""

from podnet.cni import Exec
from podnet.runtime._cache import CachedAttachment, ResultCache
from podnet.runtime._chain import (
    CNI,
    DEFAULT_BIN_DIR,
    DEFAULT_BIN_DIRS,
    DEFAULT_CACHE_DIR,
)
from podnet.runtime._conf import (
    ConfScan,
    NetworkConfigList,
    conflist_from_bytes,
    conflist_from_conf,
    scan_conf_dir,
)
from podnet.runtime._errors import (
    ConfError,
    NoNetworkConfig,
    PluginErrors,
    PluginFailed,
    PodExists,
    PodNotFound,
    SandboxError,
)
from podnet.runtime._exec import DEFAULT_TIMEOUT, ProcessExec
from podnet.runtime._ports import (
    PORT_MAPPINGS,
    PortSpecError,
    parse_port_mapping,
    port_capability_args,
)
from podnet.runtime._sandbox import (
    DEFAULT_CONF_DIR,
    POD_IFNAME,
    PodRun,
    PodRuntime,
    RuntimePaths,
    pod_addresses,
    pod_ips,
)
from podnet.runtime._state import DEFAULT_STATE_DIR, READY, STOPPED, Sandbox
from podnet.runtime._types import GCAttachment, RuntimeConf, pod_args

__all__ = [
    "CNI",
    "CachedAttachment",
    "ConfScan",
    "ConfError",
    "DEFAULT_BIN_DIR",
    "DEFAULT_BIN_DIRS",
    "DEFAULT_CACHE_DIR",
    "DEFAULT_CONF_DIR",
    "DEFAULT_STATE_DIR",
    "DEFAULT_TIMEOUT",
    "Exec",
    "GCAttachment",
    "NetworkConfigList",
    "NoNetworkConfig",
    "POD_IFNAME",
    "PORT_MAPPINGS",
    "PortSpecError",
    "parse_port_mapping",
    "port_capability_args",
    "PluginErrors",
    "PluginFailed",
    "PodExists",
    "PodNotFound",
    "PodRun",
    "PodRuntime",
    "ProcessExec",
    "READY",
    "ResultCache",
    "RuntimeConf",
    "RuntimePaths",
    "STOPPED",
    "Sandbox",
    "SandboxError",
    "conflist_from_bytes",
    "conflist_from_conf",
    "pod_args",
    "pod_addresses",
    "pod_ips",
    "scan_conf_dir",
]
