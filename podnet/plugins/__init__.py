"""podnet's CNI plugins, by type name.

An explicit table, not registration by import: the thin executables import only the one
plugin they run, and delegation looks a type up here to run it in-process.

What other packages use: the table and `load_plugin`, `run_in_process` (the in-process path
of a CNI executable), install-cni's writers (`install_executables`, `default_conflist`,
`write_conflist`, `CONFLIST_NAME`, `executable_text`, `launcher_image`, `build_launcher`)
and `podnet_type_of` (which plugin a file in a CNI bin dir is) with `PodnetExec` (an Exec
that runs those in this process). The last two groups load on
first use: a CNI executable running a plugin in-process imports this package and needs
neither.
"""

from __future__ import annotations

from podnet._lazy import import_module
from podnet.cni import Plugin, plugin_main

TYPE_CHECKING = False  # not typing's own: importing typing costs a plugin run in-process ~3 ms
if TYPE_CHECKING:
    from typing import Any

    from podnet.plugins._delegate import PodnetExec, podnet_type_of
    from podnet.plugins._install import (
        CONFLIST_NAME,
        default_conflist,
        executable_text,
        install_executables,
        launcher_image,
        write_conflist,
    )
    from podnet.plugins._launcher import build_launcher

# type name -> module whose PLUGIN attribute is the podnet.cni.Plugin
PLUGIN_MODULES: dict[str, str] = {
    "bridge": "podnet.plugins.main.bridge",
    "flannel": "podnet.plugins.meta.flannel",
    "host-local": "podnet.plugins.ipam.host_local",
    "loopback": "podnet.plugins.main.loopback",
    "portmap": "podnet.plugins.meta.portmap",
}


def load_plugin(plugin_type: str) -> Plugin:
    module = import_module(PLUGIN_MODULES[plugin_type])
    plugin = module.PLUGIN
    assert isinstance(plugin, Plugin)
    return plugin


def run_in_process(plugin_type: str, stdin: bytes | None = None) -> None:
    """The in-process path of a CNI executable: the plugin runs in this process."""
    plugin_main(load_plugin(plugin_type), stdin=stdin)


# name -> the private module that holds it, imported on first use (PEP 562)
_LAZY: dict[str, str] = {
    "CONFLIST_NAME": "podnet.plugins._install",
    "default_conflist": "podnet.plugins._install",
    "executable_text": "podnet.plugins._install",
    "install_executables": "podnet.plugins._install",
    "write_conflist": "podnet.plugins._install",
    "launcher_image": "podnet.plugins._install",
    "build_launcher": "podnet.plugins._launcher",
    "podnet_type_of": "podnet.plugins._delegate",
    "PodnetExec": "podnet.plugins._delegate",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(module), name)


__all__ = [
    "CONFLIST_NAME",
    "PLUGIN_MODULES",
    "PodnetExec",
    "default_conflist",
    "executable_text",
    "build_launcher",
    "install_executables",
    "launcher_image",
    "load_plugin",
    "podnet_type_of",
    "run_in_process",
    "write_conflist",
]
