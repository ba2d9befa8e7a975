"""portmap: the chained plugin that maps a pod's hostPorts on the node (runtimeConfig
portMappings), on nftables, interchangeable with the reference portmap's configuration."""

from podnet.cni import Plugin
from podnet.plugins.meta.portmap._config import PortMapConfig, PortMapping, parse_config
from podnet.plugins.meta.portmap._verbs import add, check, delete, gc

PLUGIN = Plugin(name="portmap", add=add, delete=delete, check=check, gc=gc)

__all__ = [
    "PLUGIN",
    "PortMapConfig",
    "PortMapping",
    "parse_config",
]
