"""What a lab keeps on disk: its state file (lab.json: nodes, store, backend, runtime) and,
for every node, the directories a real node has at fixed paths."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any

from podnet.cni import atomic_write
from podnet.lab._errors import LabError
from podnet.runtime import RuntimePaths


@dataclass(frozen=True)
class NodeDirs:
    root: str

    def path(self, *parts: str) -> str:
        return os.path.join(self.root, *parts)

    @property
    def subnet_file(self) -> str:
        return self.path("run", "flannel", "subnet.env")

    @property
    def bin_dir(self) -> str:
        return self.path("opt", "cni", "bin")

    @property
    def conf_dir(self) -> str:
        return self.path("etc", "cni", "net.d")

    @property
    def cni_data_dir(self) -> str:
        return self.path("var", "lib", "cni")

    @property
    def cni_socket(self) -> str:
        return self.path("run", "podnet", "cni.sock")

    @property
    def netns_dir(self) -> str:
        return self.path("run", "netns")

    @property
    def pods_dir(self) -> str:
        return self.path("var", "lib", "podnet", "pods")

    @property
    def containerd_dir(self) -> str:
        """containerd's root, state, socket and log (a containerd lab only)."""
        return self.path("containerd")

    def runtime_paths(self) -> RuntimePaths:
        return RuntimePaths(
            conf_dir=self.conf_dir,
            bin_dirs=(self.bin_dir,),
            cache_dir=self.cni_data_dir,
            netns_dir=self.netns_dir,
            state_dir=self.pods_dir,
        )


def nodes_dir(lab_dir: str) -> str:
    return os.path.join(lab_dir, "nodes")


def node_dirs(lab_dir: str, node: str) -> NodeDirs:
    return NodeDirs(os.path.join(nodes_dir(lab_dir), node))


def dirs_on_disk(lab_dir: str) -> list[NodeDirs]:
    """Every node directory there is, whether or not the state file still names it (a
    teardown after a crash works from these alone)."""
    try:
        names = sorted(os.listdir(nodes_dir(lab_dir)))
    except FileNotFoundError:
        return []
    return [node_dirs(lab_dir, name) for name in names]


@dataclass(frozen=True)
class StateFile:
    """lab.json, replaced whole on every change (never half-written)."""

    lab: str
    path: str

    def exists(self) -> bool:
        return os.path.exists(self.path)

    def read(self) -> dict[str, Any]:
        try:
            with open(self.path) as handle:
                data = json.load(handle)
        except FileNotFoundError:
            raise LabError(f"lab {self.lab!r} is not up (no {self.path})") from None
        assert isinstance(data, dict)
        return data

    def save(self, state: dict[str, Any]) -> None:
        atomic_write(self.path, json.dumps(state, indent=1).encode())
