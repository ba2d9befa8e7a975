"""The bridge plugin: a veth pair per pod, one end in the pod and one attached to a
Linux bridge on the node, the pod's address from a delegated IPAM plugin."""

from podnet.cni import Plugin
from podnet.plugins.main.bridge._add import add
from podnet.plugins.main.bridge._check import check, status
from podnet.plugins.main.bridge._config import DEFAULT_BRIDGE, parse_config
from podnet.plugins.main.bridge._delete import delete, gc

PLUGIN = Plugin(name="bridge", add=add, delete=delete, check=check, gc=gc, status=status)

__all__ = [
    "DEFAULT_BRIDGE",
    "PLUGIN",
    "parse_config",
]
