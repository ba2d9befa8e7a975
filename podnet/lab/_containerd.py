"""A real containerd (the distribution's) running inside a lab node's network namespace.

It is the CRI runtime kubelet talks to, and the CNI client our plugins must satisfy.
Everything it owns lives in one work dir: root, state, socket, runc root, log, config.
Lessons this launcher encodes (see the containerd study in the project notes):

- `nsenter --net=NODE`, never `ip netns exec`: the latter remounts /sys, which hides the
  cgroup mounts from runc ("no cgroup mount found in mountinfo") and gives containerd a
  private mount namespace, so the pod netns it bind-mounts would be invisible to us.
- `env -i` with only PATH (plus what the caller adds): containerd hands its environment
  to every CNI plugin it runs.
- `netns_mounts_under_state_dir`: pod netns go under the state dir, not /run/netns.
- cgroupfs (`SystemdCgroup = false`): there is no systemd on these machines.
- The sandbox image is built locally and imported into the `k8s.io` namespace, unpacked
  for the snapshotter CRI uses: containerd does not unpack it later and cannot pull it.
- The node's loopback must be up: the CRI streaming server binds 127.0.0.1 there.

Stopping is by PID only: containerd itself, the shims whose command line names our
socket (`-address <socket>`), and runc containers under our runc root. A restart (stop,
start with the same dirs) keeps shims and pods running, as a real runtime restart does.
A daemon that outlives the process that started it (the lab's) is launched by a `spawn`
function the caller hands in, and taken over later by PID (`adopt`).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Mapping

from podnet.cri import CRIClient, CRIError, RuntimeVersion
from podnet.lab._host import (
    alive,
    kill_and_wait,
    reap,
    remove_cgroup,
    shim_pids,
    unmount_all_under,
)
from podnet.lab._image import SANDBOX_IMAGE, write_sandbox_image

CONTAINERD = "containerd"
CTR = "ctr"
RUNC = "runc"
NSENTER = "nsenter"
K8S_NAMESPACE = "k8s.io"  # containerd namespace the CRI plugin keeps its objects in
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# Where containerd 1.6 puts shim sockets, whatever its state dir (hard-coded upstream).
SHIM_SOCKET_DIR = "/run/containerd/s"
UNIX_PATH_MAX = 108  # sun_path, including the terminating NUL

# Starts a daemon detached from the caller: (argv, environment, log file) -> PID.
Spawn = Callable[[list[str], dict[str, str], str], int]


class ContainerdError(Exception):
    """containerd could not be started, or did not become ready."""


def _toml_string(value: str) -> str:
    # A JSON string is a valid TOML basic string for the paths and names used here.
    return json.dumps(value)


def render_config(
    *,
    root: str,
    state: str,
    socket_path: str,
    opt_dir: str,
    runc_root: str,
    cni_bin_dir: str,
    cni_conf_dir: str,
    snapshotter: str,
    sandbox_image: str,
    log_level: str = "info",
) -> str:
    """containerd 1.6's config.toml (version 2) for one lab node."""
    s = _toml_string
    return f"""\
version = 2
root = {s(root)}
state = {s(state)}
oom_score = 0
disabled_plugins = [
  "io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper",
]

[grpc]
  address = {s(socket_path)}

[ttrpc]
  address = {s(socket_path + ".ttrpc")}

[debug]
  level = {s(log_level)}

[plugins]
  [plugins."io.containerd.internal.v1.opt"]
    path = {s(opt_dir)}
  [plugins."io.containerd.grpc.v1.cri"]
    sandbox_image = {s(sandbox_image)}
    netns_mounts_under_state_dir = true
    disable_apparmor = true
    restrict_oom_score_adj = true
    enable_selinux = false
    stream_server_address = "127.0.0.1"
    stream_server_port = "0"
    disable_tcp_service = true
    [plugins."io.containerd.grpc.v1.cri".cni]
      bin_dir = {s(cni_bin_dir)}
      conf_dir = {s(cni_conf_dir)}
      max_conf_num = 1
    [plugins."io.containerd.grpc.v1.cri".containerd]
      snapshotter = {s(snapshotter)}
      default_runtime_name = "runc"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
        runtime_type = "io.containerd.runc.v2"
        [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
          Root = {s(runc_root)}
          SystemdCgroup = false
"""


class Containerd:
    """One containerd for one lab node; all its files live under `workdir`.

    `start()` launches it in the node's network namespace and waits for CRI; pass
    `cgroup_parent` to RunPodSandbox so its pods' cgroups are found again; `stop()`
    kills only the daemon (pods and shims survive, as in a runtime restart); `close()`
    removes every trace: sandboxes, processes, mounts and the work dir.
    """

    def __init__(
        self,
        workdir: str,
        *,
        netns: str,
        cni_bin_dir: str,
        cni_conf_dir: str,
        snapshotter: str = "overlayfs",
        sandbox_image: str = SANDBOX_IMAGE,
        env: Mapping[str, str] | None = None,
        log_level: str = "info",
        cgroup_parent: str | None = None,
        spawn: Spawn | None = None,
    ) -> None:
        self.workdir = os.path.realpath(workdir)
        self.netns = netns
        self.cni_bin_dir = cni_bin_dir
        self.cni_conf_dir = cni_conf_dir
        self.snapshotter = snapshotter
        self.sandbox_image = sandbox_image
        self.env = dict(env or {})
        self.log_level = log_level
        # Pods of this node go in their own cgroup subtree (kubelet uses /kubepods), so
        # removing it cannot race with another containerd using the default /k8s.io.
        self.cgroup_parent = cgroup_parent or f"/podnet-{secrets.token_hex(4)}"
        self.root = os.path.join(self.workdir, "root")
        self.state = os.path.join(self.workdir, "state")
        self.socket = os.path.join(self.workdir, "containerd.sock")
        self.runc_root = os.path.join(self.workdir, "runc")
        self.opt_dir = os.path.join(self.workdir, "opt")
        self.config_path = os.path.join(self.workdir, "config.toml")
        self.log_path = os.path.join(self.workdir, "containerd.log")
        self.image_archive = os.path.join(self.workdir, "pause.tar")
        self.spawn = spawn
        self._process: subprocess.Popen[bytes] | None = None
        self._pid: int | None = None
        self._image_imported = False

    # -- paths ---------------------------------------------------------------------------

    @property
    def pod_netns_dir(self) -> str:
        """Where containerd bind-mounts pod network namespaces (netns_mounts_under_state_dir)."""
        return os.path.join(self.state, "io.containerd.grpc.v1.cri", "netns")

    @property
    def pid(self) -> int | None:
        return self._pid

    @property
    def running(self) -> bool:
        if self._process is not None:
            return self._process.poll() is None
        return self._pid is not None and alive(self._pid)

    def adopt(self, pid: int) -> None:
        """Take over a containerd of this work dir started earlier (by another process):
        `stop`, `restart` and `close` then act on it. Its sandbox image is in already."""
        self._process = None
        self._pid = pid
        self._image_imported = True

    def client(self, *, timeout: float = 30.0) -> CRIClient:
        return CRIClient(self.socket, timeout=timeout)

    def log_tail(self, lines: int = 30) -> str:
        try:
            with open(self.log_path, errors="replace") as handle:
                return "".join(handle.readlines()[-lines:])
        except OSError:
            return ""

    # -- lifecycle -----------------------------------------------------------------------

    def write_config(self) -> None:
        for directory in (self.root, self.state, self.runc_root, self.opt_dir):
            os.makedirs(directory, mode=0o711, exist_ok=True)
        text = render_config(
            root=self.root,
            state=self.state,
            socket_path=self.socket,
            opt_dir=self.opt_dir,
            runc_root=self.runc_root,
            cni_bin_dir=self.cni_bin_dir,
            cni_conf_dir=self.cni_conf_dir,
            snapshotter=self.snapshotter,
            sandbox_image=self.sandbox_image,
            log_level=self.log_level,
        )
        with open(self.config_path, "w") as handle:
            handle.write(text)

    def start(self, *, timeout: float = 20.0) -> RuntimeVersion:
        """Launch containerd in the node netns and wait until CRI answers; the first start
        also imports the sandbox image."""
        if self.running:
            raise ContainerdError(f"containerd for {self.workdir} already runs")
        if len(self.socket + ".ttrpc") >= UNIX_PATH_MAX:
            raise ContainerdError(
                f"containerd's socket path {self.socket}.ttrpc is longer than a unix socket "
                f"path may be ({UNIX_PATH_MAX - 1} bytes): use a shorter work dir"
            )
        os.makedirs(self.workdir, mode=0o711, exist_ok=True)
        self.write_config()
        _ensure_loopback_up(self.netns)
        argv = [NSENTER, f"--net={self.netns}", CONTAINERD, "--config", self.config_path]
        environment = {"PATH": DEFAULT_PATH, **self.env}
        if self.spawn is not None:
            self._process = None
            self._pid = self.spawn(argv, environment, self.log_path)
        else:
            with open(self.log_path, "ab") as log:
                # start_new_session: setsid, so a Ctrl-C to the test run does not hit it.
                self._process = subprocess.Popen(
                    argv,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=environment,
                    start_new_session=True,
                    cwd=self.workdir,
                )
            self._pid = self._process.pid
        try:
            version = self._wait_ready(timeout)
            if not self._image_imported:
                self.import_sandbox_image()
        except BaseException:
            self.stop()
            raise
        return version

    def _wait_ready(self, timeout: float) -> RuntimeVersion:
        """Ready means: the socket exists and a CRI Version call answers."""
        deadline = time.monotonic() + timeout
        last: Exception | None = None
        while time.monotonic() < deadline:
            if not self.running:
                raise ContainerdError(f"containerd exited at start:\n{self.log_tail()}")
            if os.path.exists(self.socket):
                try:
                    with self.client() as client:
                        return client.version(timeout=1.0)
                except CRIError as exc:
                    last = exc
            time.sleep(0.02)
        raise ContainerdError(
            f"containerd did not answer CRI within {timeout:g}s ({last or 'no socket'}):\n"
            f"{self.log_tail()}"
        )

    def import_sandbox_image(self) -> None:
        write_sandbox_image(self.image_archive, ref=self.sandbox_image)
        result = subprocess.run(
            [
                CTR,
                "--address",
                self.socket,
                "--namespace",
                K8S_NAMESPACE,
                "images",
                "import",
                "--snapshotter",
                self.snapshotter,
                self.image_archive,
            ],
            capture_output=True,
            env={"PATH": DEFAULT_PATH},
            check=False,
        )
        if result.returncode != 0:
            stderr = result.stderr.decode(errors="replace").strip()
            raise ContainerdError(f"ctr images import failed: {stderr}")
        self._image_imported = True

    def stop(self, sig: int = signal.SIGTERM, *, timeout: float = 10.0) -> None:
        """Stop the daemon only (by PID): shims, pods and all state stay, so `start()`
        picks them up again, as after a containerd restart on a real node."""
        process, pid = self._process, self._pid
        self._process = self._pid = None
        if process is not None:
            if process.poll() is None:
                process.send_signal(sig)
                try:
                    process.wait(timeout)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
            return
        if pid is None or not alive(pid):
            reap(pid)
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
        deadline = time.monotonic() + timeout
        while alive(pid) and time.monotonic() < deadline:
            time.sleep(0.02)
        if alive(pid):
            kill_and_wait([pid])
        reap(pid)

    def restart(self, sig: int = signal.SIGTERM) -> RuntimeVersion:
        self.stop(sig)
        return self.start()

    def remove_all_sandboxes(self) -> list[str]:
        """What a drained node's kubelet does: stop (CNI DEL) and remove every sandbox.
        Returns the errors met, one line each; an unreachable runtime is one of them."""
        errors = []
        try:
            with self.client(timeout=15.0) as client:
                for sandbox in client.list_pod_sandbox():
                    for step in (client.stop_pod_sandbox, client.remove_pod_sandbox):
                        try:
                            step(sandbox.id)
                        except CRIError as exc:
                            errors.append(str(exc))
        except CRIError as exc:
            errors.append(str(exc))
        return errors

    def close(self) -> list[str]:
        """Remove everything this containerd made, even if it is wedged; idempotent.
        Returns the problems met on the way (cleanup goes on regardless)."""
        problems: list[str] = []
        if self.running:
            problems += self.remove_all_sandboxes()
        self.stop()
        problems += self._force_delete_containers()
        task_ids = self._task_ids()
        kill_and_wait(shim_pids(self.socket))
        for task_id in task_ids:  # a killed shim leaves its socket behind
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.shim_socket(task_id))
        problems += remove_cgroup(self.cgroup_parent)
        try:
            unmount_all_under(self.workdir)
        except OSError as exc:
            problems.append(str(exc))
        shutil.rmtree(self.workdir, ignore_errors=True)
        with contextlib.suppress(OSError):
            os.rmdir(SHIM_SOCKET_DIR)  # only when empty: other containerds may use it
            os.rmdir(os.path.dirname(SHIM_SOCKET_DIR))
        return problems

    def shim_socket(self, task_id: str) -> str:
        """The shim's socket for a task, as containerd 1.6 names it: sha256 of
        <containerd address>/<namespace>/<task id>, in the hard-coded shim dir."""
        key = os.path.join(self.socket, K8S_NAMESPACE, task_id).encode()
        return os.path.join(SHIM_SOCKET_DIR, hashlib.sha256(key).hexdigest())

    def _task_ids(self) -> list[str]:
        tasks = os.path.join(self.state, "io.containerd.runtime.v2.task", K8S_NAMESPACE)
        try:
            return os.listdir(tasks)
        except FileNotFoundError:
            return []

    def _force_delete_containers(self) -> list[str]:
        """`runc delete --force` every container left under our runc root: kills the
        sandbox's processes and removes its cgroups, which killing the shim would not."""
        problems = []
        namespace_root = os.path.join(self.runc_root, K8S_NAMESPACE)
        with contextlib.suppress(FileNotFoundError):
            for container_id in os.listdir(namespace_root):
                result = subprocess.run(
                    [RUNC, "--root", namespace_root, "delete", "--force", container_id],
                    capture_output=True,
                    env={"PATH": DEFAULT_PATH},
                    check=False,
                )
                if result.returncode != 0:
                    problems.append(
                        f"runc delete {container_id}: {result.stderr.decode(errors='replace')}"
                    )
        return problems

    def __enter__(self) -> Containerd:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def default_snapshotter() -> str:
    """overlayfs where the kernel has it (fast), else native (copies, about +40 ms a pod)."""
    with open("/proc/filesystems") as handle:
        has_overlay = any(line.split()[-1] == "overlay" for line in handle if line.strip())
    return "overlayfs" if has_overlay or os.path.isdir("/sys/module/overlay") else "native"


def _ensure_loopback_up(netns: str) -> None:
    subprocess.run(
        [NSENTER, f"--net={netns}", "ip", "link", "set", "lo", "up"],
        check=True,
        capture_output=True,
        env={"PATH": DEFAULT_PATH},
    )


def missing_prerequisites() -> list[str]:
    """Why containerd cannot run pods here, one reason each; empty when it can."""
    reasons = []
    if os.geteuid() != 0:
        reasons.append("needs root")
    for tool in (CONTAINERD, CTR, RUNC, NSENTER, "containerd-shim-runc-v2", "ip"):
        if shutil.which(tool, path=DEFAULT_PATH) is None:
            reasons.append(f"{tool} is not installed")
    if not _cgroups_mounted():
        reasons.append("no cgroup hierarchy is mounted under /sys/fs/cgroup")
    return reasons


def _cgroups_mounted() -> bool:
    if os.path.exists("/sys/fs/cgroup/cgroup.controllers"):  # unified cgroup v2
        return True
    return any(
        os.path.isdir(f"/sys/fs/cgroup/{controller}")
        and os.path.ismount(f"/sys/fs/cgroup/{controller}")
        for controller in ("memory", "cpu", "pids")
    )
