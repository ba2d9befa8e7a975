"""host-local: addresses from range sets, one file per address on the node's disk,
interchangeable with the reference plugin (same files, same lock, same words)."""

from podnet.cni import Plugin
from podnet.plugins.ipam.host_local._config import DEFAULT_DATA_DIR, load_config
from podnet.plugins.ipam.host_local._store import Attachment, DiskStore
from podnet.plugins.ipam.host_local._verbs import add, check, delete, gc, status

PLUGIN = Plugin(name="host-local", add=add, delete=delete, check=check, gc=gc, status=status)

__all__ = [
    "DEFAULT_DATA_DIR",
    "PLUGIN",
    "Attachment",
    "DiskStore",
    "load_config",
]
