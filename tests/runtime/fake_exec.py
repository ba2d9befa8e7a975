"""A call-recording fake of podnet.runtime.Exec: each plugin type is a function from the
call to its result (ADD), None, or a raised CNIError."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from podnet.cni import CNIError, InvalidConfig


@dataclass
class Call:
    plugin: str
    command: str
    env: dict[str, str]
    config: dict[str, Any]

    @property
    def prev_result(self) -> Any:
        return self.config.get("prevResult")


Handler = Callable[[Call], dict[str, Any] | None]


def ok(call: Call) -> dict[str, Any] | None:
    """Passes the previous result on (ADD), succeeds otherwise."""
    if call.command != "ADD":
        return None
    return call.prev_result or {"cniVersion": call.config["cniVersion"]}


def ipam(address: str, ifname_index: int = 0) -> Handler:
    """A main plugin that creates eth0 and gives it `address`."""

    def handler(call: Call) -> dict[str, Any] | None:
        if call.command != "ADD":
            return None
        return {
            "cniVersion": call.config["cniVersion"],
            "interfaces": [{"name": call.env["CNI_IFNAME"], "sandbox": call.env["CNI_NETNS"]}],
            "ips": [{"address": address, "interface": ifname_index}],
        }

    return handler


def fail_on(*commands: str, error: CNIError | None = None) -> Handler:
    def handler(call: Call) -> dict[str, Any] | None:
        if call.command in commands:
            raise error or CNIError(f"{call.plugin} refuses {call.command}", code=11)
        return ok(call)

    return handler


class FakeExec:
    def __init__(
        self,
        plugins: Mapping[str, Handler],
        *,
        versions: Mapping[str, Sequence[str]] | None = None,
    ) -> None:
        self.plugins = dict(plugins)
        self.versions = dict(versions or {})
        self.calls: list[Call] = []

    def find_in_path(self, plugin_type: str, paths: Sequence[str]) -> str:
        if plugin_type not in self.plugins:
            raise InvalidConfig(f'failed to find plugin "{plugin_type}" in path {list(paths)}')
        return f"/fake/bin/{plugin_type}"

    def exec_plugin(self, executable: str, cni_env: Mapping[str, str], stdin: bytes) -> bytes:
        plugin = os.path.basename(executable)
        command = cni_env["CNI_COMMAND"]
        if command == "VERSION":
            supported = self.versions.get(plugin, ["0.4.0", "1.0.0", "1.1.0"])
            return json.dumps({"cniVersion": "1.1.0", "supportedVersions": supported}).encode()
        call = Call(plugin, command, dict(cni_env), json.loads(stdin))
        self.calls.append(call)
        result = self.plugins[plugin](call)
        return b"" if result is None else json.dumps(result).encode()

    def commands(self) -> list[tuple[str, str]]:
        return [(c.plugin, c.command) for c in self.calls]
