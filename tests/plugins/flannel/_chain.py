"""A node for the whole chain flannel -> bridge -> host-local: subnet.env, flannel's scratch
dir and host-local's data dir under tmp, plugins run inside the node namespace as a runtime
runs them (`nsenter --net=NODE flannel`, config on stdin, CNI_* in the environment), and
what the chain leaves behind in the node, the pods and on disk."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from podnet.netlink import list_links, open_rtnl
from tests.plugins.main._support import (
    Cni,
    masq_elements,
    node_veths,
)

NETWORK = "cbr0"
GATEWAY = "10.244.1.1"
# FLANNEL_IPMASQ=false: the agent does not masquerade, so the bridge does (ipMasq true).
SUBNET_ENV = (
    "FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.1.1/24\n"
    "FLANNEL_MTU=1450\nFLANNEL_IPMASQ=false\n"
)
# The delegate kube-flannel's conflist gives flannel.
KUBE_FLANNEL_DELEGATE = {"hairpinMode": True, "isDefaultGateway": True}


@dataclass
class ChainNode:
    """One node namespace; every path flannel and host-local write to lives under `root`."""

    node: str
    root: Path
    bin_dir: Path  # podnet's executables as install-cni writes them
    subnet_env_text: str = SUBNET_ENV
    _runners: dict[str, Cni] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.subnet_env.write_text(self.subnet_env_text)

    @property
    def subnet_env(self) -> Path:
        return self.root / "subnet.env"

    @property
    def flannel_dir(self) -> Path:
        return self.root / "flannel"

    @property
    def ipam_dir(self) -> Path:
        return self.root / "networks"

    def flannel_conf(self, version: str, **extra: Any) -> dict[str, Any]:
        return {
            "cniVersion": version,
            "name": NETWORK,
            "type": "flannel",
            "subnetFile": str(self.subnet_env),
            "dataDir": str(self.flannel_dir),
            "ipam": {"dataDir": str(self.ipam_dir)},
            "delegate": dict(KUBE_FLANNEL_DELEGATE),
            **extra,
        }

    def runner(self, cni_path: str) -> Cni:
        """Runs executables in the node with CNI_PATH = `cni_path` (and nothing else)."""
        if cni_path not in self._runners:
            self._runners[cni_path] = Cni(
                root=self.bin_dir.parent,
                node=self.node,
                data_dir=self.ipam_dir,
                extra_env={"CNI_PATH": cni_path},
            )
        return self._runners[cni_path]

    # ---- what the chain left behind -------------------------------------------------

    def scratch_files(self) -> list[str]:
        """Everything in flannel's dataDir: saved configs and any temp file of a write."""
        return sorted(os.listdir(self.flannel_dir)) if self.flannel_dir.exists() else []

    def ipam_files(self) -> list[str]:
        """Everything in the network's host-local dir but the lock and the round-robin
        hints: reservations and any temp file of a reservation."""
        directory = self.ipam_dir / NETWORK
        if not directory.exists():
            return []
        return sorted(
            name
            for name in os.listdir(directory)
            if name != "lock" and not name.startswith("last_reserved_ip.")
        )

    def veths(self) -> list[str]:
        return node_veths(self.node)

    def masq(self) -> dict[str, str]:
        return masq_elements(self.node, NETWORK)

    def leftovers(self, pods: list[str]) -> dict[str, Any]:
        """Whatever the pods still hold; empty lists everywhere once all were deleted."""
        links = {pod: pod_links(pod) for pod in pods}
        return {
            "node veths": self.veths(),
            "pod links": {pod: names for pod, names in links.items() if names},
            "reservations": self.ipam_files(),
            "scratch": self.scratch_files(),
            "masquerade": self.masq(),
        }


NOTHING_LEFT: dict[str, Any] = {
    "node veths": [],
    "pod links": {},
    "reservations": [],
    "scratch": [],
    "masquerade": {},
}


def pod_links(pod: str) -> list[str]:
    """The pod's interfaces other than lo."""
    with open_rtnl(pod) as nl:
        return sorted(link.name for link in list_links(nl) if link.name != "lo")
