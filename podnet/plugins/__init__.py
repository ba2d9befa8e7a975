"""podnet's CNI plugins, by type name.

An explicit table, not registration by import: the thin executables import only the one
plugin they run, and delegation looks a type up here to run it in-process.
"""

from __future__ import annotations

import importlib

from podnet.cni import Plugin

# type name -> module whose PLUGIN attribute is the podnet.cni.Plugin
PLUGIN_MODULES: dict[str, str] = {
    "bridge": "podnet.plugins.main.bridge",
    "flannel": "podnet.plugins.meta.flannel",
    "host-local": "podnet.plugins.ipam.host_local",
    "loopback": "podnet.plugins.main.loopback",
}


def load_plugin(plugin_type: str) -> Plugin:
    module = importlib.import_module(PLUGIN_MODULES[plugin_type])
    plugin = module.PLUGIN
    assert isinstance(plugin, Plugin)
    return plugin


__all__ = ["PLUGIN_MODULES", "load_plugin"]
