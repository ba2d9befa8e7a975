"""A lab node's container runtime, behind one interface the lab picks once (by the name in
its state file): podnet's runtime library, run in the node's namespace (`PodnetNodes`), or
a real containerd per node driven over CRI (`podnet.lab._containerd_nodes`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from podnet.agent import DEFAULT_GC_GRACE, DEFAULT_GC_INTERVAL
from podnet.lab._state import node_dirs
from podnet.lab._supervise import Supervisor
from podnet.netlink import run_in_netns
from podnet.runtime import PodRun, PodRuntime, Sandbox, port_capability_args

Progress = Callable[[str], None]
PortMapping = Mapping[str, Any]  # {hostPort, containerPort, protocol[, hostIP]}


@dataclass(frozen=True)
class LabSite:
    """What a node runtime sees of its lab."""

    name: str
    dir: str
    supervisor: Supervisor
    node_netns: Callable[[str], str]  # a node's namespace; LabError for an unknown node
    gc_interval: float = DEFAULT_GC_INTERVAL
    gc_grace: float = DEFAULT_GC_GRACE


class NodeRuntime(Protocol):
    """What the lab asks of every node's container runtime. Errors are LabErrors."""

    def check(self) -> None:
        """Whether this machine can run it at all (before anything is built)."""

    def start(self, node: str, progress: Progress) -> None:
        """Start the node's runtime; before its agent, as kubelet's runtime is there first."""

    def agent_args(self, node: str) -> list[str]:
        """What the node's agent needs to know of the runtime (`podnet agent run` flags)."""
        ...

    def doctor_args(self, node: str) -> list[str]:
        """What `podnet doctor` needs to know of the runtime (which sandboxes exist)."""
        ...

    def wait_ready(self, node: str, deadline: float, progress: Progress) -> None:
        """Once the node's agent is ready: wait until the runtime can start pods."""

    def run_pod(
        self, node: str, name: str, namespace: str, *, ports: Sequence[PortMapping] = ()
    ) -> Sandbox:
        """Start a pod; `ports` are its hostPorts, as CNI's portMappings entries."""
        ...

    def remove_pod(self, node: str, sandbox: Sandbox) -> None: ...

    def pods(self, node: str) -> list[Sandbox]: ...

    def pod(self, node: str, name: str, namespace: str) -> Sandbox | None:
        """One pod's sandbox on the node, if there is one (what `pods` would list)."""
        ...

    def stop_node(self, node: str) -> None:
        """A node leaves: stop its pods while its agent still runs, then the runtime."""

    def close_all(self) -> tuple[list[str], list[str]]:
        """`down`: stop every node's runtime, found from the node dirs alone (also after a
        crash). Returns what was stopped, and what could not be cleaned up."""
        ...


class PodnetNodes:
    """podnet's runtime library: the lab creates pod namespaces and runs the CNI chain
    itself, from inside the node's namespace (where plugins must run). Nothing runs
    between calls, so there is nothing to start or stop."""

    def __init__(self, site: LabSite):
        self.site = site

    def runtime(self, node: str) -> PodRuntime:
        return PodRuntime(node_dirs(self.site.dir, node).runtime_paths(), warn=lambda _: None)

    def _in_node(self, node: str, func: Callable[[PodRuntime], Any]) -> Any:
        netns = self.site.node_netns(node)
        return run_in_netns(netns, lambda: func(self.runtime(node)))

    def check(self) -> None:
        pass

    def start(self, node: str, progress: Progress) -> None:
        pass

    def agent_args(self, node: str) -> list[str]:
        return []

    def doctor_args(self, node: str) -> list[str]:
        return []  # the cached attachments whose netns lives are the node's pods

    def wait_ready(self, node: str, deadline: float, progress: Progress) -> None:
        pass

    def run_pod(
        self, node: str, name: str, namespace: str, *, ports: Sequence[PortMapping] = ()
    ) -> Sandbox:
        args = port_capability_args(ports)
        run: PodRun = self._in_node(node, lambda rt: rt.run(name, namespace, capability_args=args))
        return run.sandbox

    def remove_pod(self, node: str, sandbox: Sandbox) -> None:
        self._in_node(node, lambda rt: rt.remove(sandbox.name, sandbox.namespace))

    def pods(self, node: str) -> list[Sandbox]:
        return self.runtime(node).pods()

    def pod(self, node: str, name: str, namespace: str) -> Sandbox | None:
        return self.runtime(node).pod(name, namespace)

    def stop_node(self, node: str) -> None:
        pass

    def close_all(self) -> tuple[list[str], list[str]]:
        return [], []
