"""Entry point of the executables install-cni writes into a CNI bin dir."""

from __future__ import annotations

from podnet.cni import plugin_main
from podnet.plugins import load_plugin


def main(plugin_type: str) -> None:
    plugin_main(load_plugin(plugin_type))
