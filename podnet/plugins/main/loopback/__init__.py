"""The loopback plugin: `lo` up in the pod's namespace."""

from podnet.cni import Plugin
from podnet.plugins.main.loopback._loopback import add, check, delete

PLUGIN = Plugin(name="loopback", add=add, delete=delete, check=check)

__all__ = [
    "PLUGIN",
]
