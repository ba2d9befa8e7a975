"""The in-process path of a CNI executable: the plugin runs in this process."""

from __future__ import annotations

from podnet.cni import plugin_main
from podnet.plugins import load_plugin


def main(plugin_type: str, stdin: bytes | None = None) -> None:
    plugin_main(load_plugin(plugin_type), stdin=stdin)
