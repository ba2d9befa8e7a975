"""A real containerd per lab node: started in the node's namespace before its agent, pods
started over CRI as kubelet does; containerd runs the CNI executables the node's agent
installed, and each agent garbage-collects with the sandboxes its node's containerd lists."""

from __future__ import annotations

import hashlib
import os
import signal
import time
from collections.abc import Sequence

from podnet.lab._containerd import (
    Containerd,
    ContainerdError,
    default_snapshotter,
    missing_prerequisites,
)
from podnet.lab._cri_pods import PodError, list_pods, remove_pod, run_pod
from podnet.lab._errors import LabError
from podnet.lab._node_runtime import LabSite, PortMapping, Progress
from podnet.lab._state import dirs_on_disk, node_dirs
from podnet.runtime import Sandbox

# containerd 1.6 vendors libcni 1.1, which reads results of CNI spec 1.0.0 at most: a
# 1.1.0 conflist makes every ADD fail with "unsupported CNI result version".
CONTAINERD_CNI_VERSION = "1.0.0"


class ContainerdNodes:
    def __init__(self, site: LabSite):
        self.site = site

    def _cgroup_parent(self, node: str) -> str:
        # Per lab and node, also across lab roots (tests run labs of one name at once).
        tag = hashlib.sha256(self.site.dir.encode()).hexdigest()[:8]
        return f"/podnet-{self.site.name}-{node}-{tag}"

    def containerd(self, node: str, *, netns: str | None = None) -> Containerd:
        """The containerd of `node` (taken over by PID if it runs): its work dir is in
        the node's dir, its CNI bin and conf dirs are the ones the node's agent fills."""
        d = node_dirs(self.site.dir, node)
        supervisor = self.site.supervisor
        what = f"containerd-{node}"
        containerd = Containerd(
            d.containerd_dir,
            netns=netns if netns is not None else self.site.node_netns(node),
            cni_bin_dir=d.bin_dir,
            cni_conf_dir=d.conf_dir,
            snapshotter=default_snapshotter(),
            env=supervisor.plugin_env(),
            cgroup_parent=self._cgroup_parent(node),
            spawn=lambda argv, env, log: supervisor.spawn(what, argv, log, env=env),
        )
        pid = supervisor.our_pid(supervisor.pid_file(what))
        if pid is not None:
            containerd.adopt(pid)
        return containerd

    def check(self) -> None:
        reasons = missing_prerequisites()
        if reasons:
            raise LabError(f"containerd cannot run pods on this machine: {'; '.join(reasons)}")

    def start(self, node: str, progress: Progress) -> None:
        containerd = self.containerd(node)
        os.makedirs(node_dirs(self.site.dir, node).conf_dir, exist_ok=True)
        try:
            version = containerd.start()
            with containerd.client() as cri:
                network = cri.network_ready()
        except Exception as exc:  # ContainerdError, CRIError, ImageError: one line
            raise LabError(f"containerd on {node}: {exc}") from None
        progress(
            f"containerd {version.runtime_version} on {node}: NetworkReady "
            f"{str(network.status).lower()} ({network.reason or 'no reason'}) "
            "until the agent installs the conflist"
        )

    def agent_args(self, node: str) -> list[str]:
        """The agent writes a conflist containerd can read and GCs with the sandboxes of
        its node's containerd."""
        return [
            "--cni-version",
            CONTAINERD_CNI_VERSION,
            "--cri-socket",
            self.containerd(node).socket,
            "--gc-interval",
            str(self.site.gc_interval),
            "--gc-grace",
            str(self.site.gc_grace),
        ]

    def doctor_args(self, node: str) -> list[str]:
        return ["--cri-socket", self.containerd(node).socket]

    def restart(self, node: str, sig: int = signal.SIGTERM) -> None:
        """Stop a node's containerd with `sig` and start it again on the same state, as
        after a runtime upgrade or crash: pods and their shims keep running."""
        try:
            self.containerd(node).restart(sig)
        except (ContainerdError, OSError) as exc:
            raise LabError(f"containerd on {node}: {exc}") from None

    def network_ready(self, node: str) -> bool:
        """What kubelet asks before it starts pods: the runtime's NetworkReady."""
        try:
            with self.containerd(node).client(timeout=5.0) as cri:
                return cri.network_ready().status
        except Exception:  # not answering is not ready
            return False

    def wait_ready(self, node: str, deadline: float, progress: Progress) -> None:
        """containerd watches the conf dir: NetworkReady turns true once the agent has
        written its conflist there."""
        while not self.network_ready(node):
            if time.monotonic() > deadline:
                raise LabError(f"containerd on {node}: NetworkReady still false")
            time.sleep(0.05)
        progress(f"containerd on {node}: NetworkReady true (the agent's conflist)")

    def run_pod(
        self, node: str, name: str, namespace: str, *, ports: Sequence[PortMapping] = ()
    ) -> Sandbox:
        try:
            return run_pod(self.containerd(node), name, namespace, ports=ports)
        except PodError as exc:
            raise LabError(f"{node}: {exc}") from None

    def remove_pod(self, node: str, sandbox: Sandbox) -> None:
        try:
            remove_pod(self.containerd(node), sandbox.id)
        except PodError as exc:
            raise LabError(f"{node}: {exc}") from None

    def pods(self, node: str) -> list[Sandbox]:
        try:
            return list_pods(self.containerd(node))
        except PodError as exc:
            raise LabError(f"{node}: {exc}") from None

    def pod(self, node: str, name: str, namespace: str) -> Sandbox | None:
        key = f"{namespace}/{name}"
        return next((s for s in self.pods(node) if s.key == key), None)

    def stop_node(self, node: str) -> None:
        if os.path.isdir(node_dirs(self.site.dir, node).containerd_dir):
            # Its pods are stopped (CNI DEL) while the node's agent still runs.
            problems = self.containerd(node).close()
            if problems:
                raise LabError(f"containerd on {node} left: {'; '.join(problems)}")

    def close_all(self) -> tuple[list[str], list[str]]:
        """Close every node's containerd (its sandboxes are stopped first: CNI DEL while
        the agents still run)."""
        closed: list[str] = []
        problems: list[str] = []
        for d in dirs_on_disk(self.site.dir):
            if not os.path.isdir(d.containerd_dir):
                continue
            node = os.path.basename(d.root)
            try:
                left = self.containerd(node, netns="").close()
            except Exception as exc:  # the rest of the teardown must still happen
                left = [f"{type(exc).__name__}: {exc}"]
            problems += [f"{node}: {p}" for p in left]
            closed.append(f"containerd-{node}")
        return closed, problems
