"""The container-runtime side: what libcni and containerd's CRI plugin do for a pod.

`CNI` runs a network config list (ADD/CHECK/DEL/GC/STATUS, validation, the libcni
result cache) over an injected `Exec`; `scan_conf_dir` finds the lists as containerd
does; `PodRuntime` creates pod sandboxes (netns, lo, ADD on eth0, pod IP) and records them
so GC knows which attachments are still in use.
"""

from podnet.runtime._cache import CACHE_KIND, CachedAttachment, ResultCache
from podnet.runtime._chain import (
    CNI,
    DEFAULT_BIN_DIRS,
    DEFAULT_CACHE_DIR,
    LEGACY_ATTACHMENTS_KEY,
    VALID_ATTACHMENTS_KEY,
    GCReport,
    PluginStatus,
    network_of,
    plugin_config,
)
from podnet.runtime._conf import (
    ConfScan,
    NetworkConfigList,
    conflist_from_bytes,
    conflist_from_conf,
    load_conf_file,
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
from podnet.runtime._exec import DEFAULT_TIMEOUT, Exec, ProcessExec, cni_env, supported_versions
from podnet.runtime._sandbox import (
    DEFAULT_CONF_DIR,
    POD_IFNAME,
    PodRun,
    PodRuntime,
    RuntimePaths,
    StatusReport,
    pod_ip,
    pod_ips,
)
from podnet.runtime._state import (
    CREATING,
    DEFAULT_STATE_DIR,
    READY,
    STOPPED,
    Sandbox,
    SandboxStore,
)
from podnet.runtime._types import GCAttachment, RuntimeConf, pod_args

__all__ = [
    "CACHE_KIND",
    "CNI",
    "CREATING",
    "CachedAttachment",
    "ConfError",
    "ConfScan",
    "DEFAULT_BIN_DIRS",
    "DEFAULT_CACHE_DIR",
    "DEFAULT_CONF_DIR",
    "DEFAULT_STATE_DIR",
    "DEFAULT_TIMEOUT",
    "Exec",
    "GCAttachment",
    "GCReport",
    "LEGACY_ATTACHMENTS_KEY",
    "NetworkConfigList",
    "NoNetworkConfig",
    "POD_IFNAME",
    "PluginErrors",
    "PluginFailed",
    "PluginStatus",
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
    "SandboxStore",
    "StatusReport",
    "VALID_ATTACHMENTS_KEY",
    "cni_env",
    "conflist_from_bytes",
    "conflist_from_conf",
    "load_conf_file",
    "network_of",
    "plugin_config",
    "pod_args",
    "pod_ip",
    "pod_ips",
    "scan_conf_dir",
    "supported_versions",
]
