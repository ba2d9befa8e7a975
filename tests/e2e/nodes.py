"""Lab nodes for the end-to-end tests: a network namespace with its own containerd.

Which CNI plugins containerd runs is a parameter (`PluginSet`): the reference binaries
(Debian's containernetworking-plugins in /usr/lib/cni), or podnet's executables as
`podnet install-cni` writes them, with reference binaries for the types podnet does not
provide yet. The network config is the same bridge + host-local list in both cases.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from podnet.cri import CRIClient, PodMetadata
from podnet.lab import (
    DEFAULT_BUSYBOX,
    Containerd,
    default_snapshotter,
    is_static_elf,
    missing_prerequisites,
)
from podnet.netlink import create_netns, delete_netns, write_sysctl
from podnet.plugins import PLUGIN_MODULES

REFERENCE_BIN_DIR = "/usr/lib/cni"
# The plugin types containerd runs for our conflist: loopback for lo, always, then ours.
USED_TYPES = ("loopback", "bridge", "host-local", "portmap")
# PODNET_E2E_PLUGINS=reference (or podnet) runs one set only.
PLUGIN_SETS = os.environ.get("PODNET_E2E_PLUGINS", "reference,podnet").split(",")
NETWORK_NAME = "cbr0"
CNI_VERSION = "1.0.0"  # the newest the reference plugins (1.1.1) speak


def e2e_unavailable() -> list[str]:
    """Why these tests cannot run here; empty when they can."""
    reasons = missing_prerequisites()
    for plugin_type in USED_TYPES:
        if not os.access(os.path.join(REFERENCE_BIN_DIR, plugin_type), os.X_OK):
            reasons.append(f"reference plugin {plugin_type} missing (containernetworking-plugins)")
    if not os.path.exists(DEFAULT_BUSYBOX) or not is_static_elf(DEFAULT_BUSYBOX):
        reasons.append(f"{DEFAULT_BUSYBOX} is not a static busybox (busybox-static)")
    return reasons


@dataclass(frozen=True)
class PluginSet:
    name: str
    bin_dir: str
    podnet_types: tuple[str, ...] = ()
    skip_reason: str = ""


def make_plugin_set(name: str, scratch_dir: str) -> PluginSet:
    if name == "reference":
        return PluginSet(name, REFERENCE_BIN_DIR)
    if name != "podnet":
        raise ValueError(f"unknown plugin set {name!r}")
    ours = tuple(t for t in USED_TYPES if t in PLUGIN_MODULES)
    if not ours:
        return PluginSet(
            name,
            scratch_dir,
            skip_reason=f"podnet provides none of {', '.join(USED_TYPES)} yet "
            "(podnet.plugins.PLUGIN_MODULES)",
        )
    # Exactly what an operator runs on a node; containerd 1.6 takes one bin dir, so the
    # types podnet lacks are linked in from the reference plugins.
    subprocess.run(
        [sys.executable, "-m", "podnet.cli.main", "install-cni", "--bin-dir", scratch_dir],
        check=True,
        capture_output=True,
    )
    for plugin_type in USED_TYPES:
        target = os.path.join(scratch_dir, plugin_type)
        if not os.path.exists(target):
            os.symlink(os.path.join(REFERENCE_BIN_DIR, plugin_type), target)
    return PluginSet(name, scratch_dir, podnet_types=ours)


def ip(netns_name: str, *args: str) -> str:
    """`ip -n NODE ...`: test set-up only, never on a path the code under test takes."""
    result = subprocess.run(
        ["ip", "-n", netns_name, *args], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(f"ip -n {netns_name} {' '.join(args)}: {result.stderr.strip()}")
    return result.stdout


@dataclass
class Pod:
    name: str
    uid: str
    sandbox_id: str
    ip: str
    netns_path: str
    additional_ips: tuple[str, ...] = ()


@dataclass
class Node:
    """A lab node: netns /run/netns/pn-XXXX, a work dir with CNI conf, host-local data
    and containerd's files, and the containerd running in that netns."""

    name: str
    netns: str
    workdir: str
    subnet: str
    plugins: PluginSet
    containerd: Containerd
    cri: CRIClient | None = None
    pods: list[Pod] = field(default_factory=list)
    portmap: bool = False  # chain portmap after bridge, as kube-flannel's conflist does
    subnet6: str = ""  # an IPv6 range too: dual-stack pods

    @classmethod
    def create(
        cls,
        plugins: PluginSet,
        *,
        subnet: str,
        with_conflist: bool = True,
        start: bool = True,
        portmap: bool = False,
        subnet6: str = "",
    ) -> Node:
        name = f"pn-{secrets.token_hex(4)}"
        netns = create_netns(f"/run/netns/{name}")
        # Short path on purpose: containerd's unix socket path must stay under 108 bytes.
        workdir = tempfile.mkdtemp(prefix="pn-e2e-")
        containerd = Containerd(
            os.path.join(workdir, "containerd"),
            netns=netns,
            cni_bin_dir=plugins.bin_dir,
            cni_conf_dir=os.path.join(workdir, "net.d"),
            snapshotter=default_snapshotter(),
            # containerd passes its environment to the plugins: podnet's log and
            # attachment locks here.
            env={
                "PODNET_LOG_FILE": os.path.join(workdir, "cni.log"),
                "PODNET_LOCK_DIR": os.path.join(workdir, "attachments"),
            },
        )
        node = cls(
            name, netns, workdir, subnet, plugins, containerd, portmap=portmap, subnet6=subnet6
        )
        try:
            os.makedirs(containerd.cni_conf_dir)
            if with_conflist:
                node.write_conflist()
            if start:
                node.start()
        except BaseException:
            node.destroy()
            raise
        return node

    # -- configuration -----------------------------------------------------------------

    @property
    def ipam_dir(self) -> str:
        """host-local's dataDir; reservations are files named by IP under <dir>/<network>."""
        return os.path.join(self.workdir, "ipam")

    def conflist(self) -> dict[str, Any]:
        portmap = [{"type": "portmap", "capabilities": {"portMappings": True}}]
        v6_range = [[{"subnet": self.subnet6}]] if self.subnet6 else []
        v6_route = [{"dst": "::/0"}] if self.subnet6 else []
        return {
            "cniVersion": CNI_VERSION,
            "name": NETWORK_NAME,
            "plugins": [
                {
                    "type": "bridge",
                    "bridge": "cni0",
                    "isGateway": True,
                    "ipMasq": False,
                    "hairpinMode": True,
                    "ipam": {
                        "type": "host-local",
                        "ranges": [[{"subnet": self.subnet}]] + v6_range,
                        "routes": [{"dst": "0.0.0.0/0"}] + v6_route,
                        "dataDir": self.ipam_dir,
                    },
                },
                *(portmap if self.portmap else []),
            ],
        }

    def write_conflist(self) -> str:
        path = os.path.join(self.containerd.cni_conf_dir, "10-bridge.conflist")
        temp = path + ".tmp"
        with open(temp, "w") as handle:
            json.dump(self.conflist(), handle, indent=2)
        os.replace(temp, path)  # containerd watches the dir: never show it half a file
        return path

    def reservations(self) -> dict[str, str]:
        """host-local's reservations: IP -> container ID (the file's first line)."""
        directory = os.path.join(self.ipam_dir, NETWORK_NAME)
        found = {}
        if os.path.isdir(directory):
            for entry in os.listdir(directory):
                if entry[0].isdigit():
                    with open(os.path.join(directory, entry)) as handle:
                        found[entry] = handle.read().splitlines()[0].strip()
        return found

    # -- runtime -----------------------------------------------------------------------

    def start(self) -> None:
        self.containerd.start()
        if self.cri is None:
            self.cri = self.containerd.client()

    def restart(self, sig: int) -> None:
        """Stop containerd by PID with `sig` and start it on the same root and state."""
        self.containerd.restart(sig)

    @property
    def client(self) -> CRIClient:
        assert self.cri is not None, "node not started"
        return self.cri

    def run_pod(
        self, name: str, namespace: str = "default", *, ports: list[dict[str, Any]] | None = None
    ) -> Pod:
        """RunPodSandbox as kubelet does it, then read the pod IP and netns back."""
        uid = str(uuid.uuid4())
        sandbox_id = self.client.run_pod_sandbox(
            PodMetadata(name=name, namespace=namespace, uid=uid),
            cgroup_parent=self.containerd.cgroup_parent,
            port_mappings=ports or (),
        )
        status = self.client.pod_sandbox_status(sandbox_id)
        assert status.netns_path, f"no netns in the status of {name}"
        pod = Pod(name, uid, sandbox_id, status.ip, status.netns_path, status.additional_ips)
        self.pods.append(pod)
        return pod

    def remove_pod(self, pod: Pod) -> None:
        """What kubelet does when a pod goes: StopPodSandbox (it calls it again on every
        sync until the pod is gone, so twice here), then RemovePodSandbox."""
        self.client.stop_pod_sandbox(pod.sandbox_id)
        self.client.stop_pod_sandbox(pod.sandbox_id)
        self.client.remove_pod_sandbox(pod.sandbox_id)
        self.pods.remove(pod)

    def forget_sandbox(self, pod: Pod) -> None:
        """Make the runtime lose a sandbox without CNI DEL (see `forget_sandbox`)."""
        forget_sandbox(self.containerd, pod.sandbox_id, restart=self.containerd.restart)
        self.pods.remove(pod)

    def destroy(self) -> list[str]:
        """Remove everything: sandboxes (CNI DEL), containerd and its shims, mounts,
        cgroups, the netns and the work dir. Returns what went wrong."""
        problems = []
        if self.cri is not None:
            self.cri.close()
            self.cri = None
        log_tail = self.containerd.log_tail(60)
        try:
            problems += self.containerd.close()
        except Exception as exc:
            problems.append(f"containerd close: {exc!r}")
        # Captured by pytest, and shown only when the test fails.
        print(f"--- containerd log of {self.name} ---\n{log_tail}")
        try:
            delete_netns(self.netns)
        except OSError as exc:
            problems.append(f"delete netns {self.netns}: {exc}")
        shutil.rmtree(self.workdir, ignore_errors=True)
        return problems

    def enable_forwarding(self) -> None:
        write_sysctl(self.netns, {"net.ipv4.ip_forward": 1})


def forget_sandbox(containerd: Containerd, sandbox_id: str, *, restart: Any) -> None:
    """Make the runtime lose a sandbox without CNI DEL: kill and delete its container
    with ctr, behind CRI's back, then restart containerd (`restart()`), whose CRI plugin
    rebuilds its sandbox list from the containers that are left. (What a wiped or
    corrupted runtime state does on a real node.)"""
    ctr = ["ctr", "--address", containerd.socket, "--namespace", "k8s.io"]
    subprocess.run(ctr + ["tasks", "kill", "--signal", "SIGKILL", sandbox_id], check=True)
    # CRI's exit handler notices and deletes the task itself (without CNI DEL).
    with containerd.client() as cri:
        assert wait_until(lambda: cri.pod_sandbox_status(sandbox_id).state == "SANDBOX_NOTREADY")
    subprocess.run(ctr + ["tasks", "delete", sandbox_id], capture_output=True, check=False)
    subprocess.run(ctr + ["containers", "delete", sandbox_id], check=True)
    restart()


def ping(pod: Pod, address: str, *, attempts: int = 3) -> bool:
    """One echo from inside `pod`'s netns; retried, since the first one may wait on ARP."""
    for _ in range(attempts):
        result = subprocess.run(
            ["nsenter", f"--net={pod.netns_path}", "ping", "-c", "1", "-W", "1", address],
            capture_output=True,
            check=False,
        )
        if result.returncode == 0:
            return True
        time.sleep(0.1)
    return False


def wait_until(predicate: Any, *, timeout: float = 10.0, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())
