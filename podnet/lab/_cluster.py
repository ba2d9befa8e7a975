"""A whole cluster on one machine: the topology, the store, the nodeipam controller, one
agent per node, and pods started the way a runtime starts them.

Everything lives under one state directory per lab (LAB_ROOT/<name>): the sqlite store,
PID files and logs of the processes the lab started, and for every node the directories a
real node has at fixed paths (subnet.env, CNI bin and conf dirs, CNI data, netns dir, pod
records). Processes are recorded by PID and their environment names the lab directory,
so `down` stops exactly what `up` started, also after a crash, and never anything else.

A node's container runtime is either podnet's runtime library (`runtime="podnet"`: the
lab creates pod namespaces and runs the chain itself) or a real containerd per node
(`runtime="containerd"`): pods are then started over CRI as kubelet does, containerd
runs the CNI executables the node's agent installed, and each agent garbage-collects
with the sandboxes its node's containerd lists.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from podnet.agent import DEFAULT_GC_GRACE, DEFAULT_GC_INTERVAL
from podnet.cni import atomic_write
from podnet.lab._containerd import (
    Containerd,
    ContainerdError,
    default_snapshotter,
    missing_prerequisites,
)
from podnet.lab._cri_pods import PodError, list_pods, remove_pod, run_pod
from podnet.lab._host import reap
from podnet.lab._topology import (
    CONTROL_PLANE,
    NODE_UNDERLAY_IF,
    UNDERLAY_SUFFIX,
    LabNode,
    Underlay,
    add_node,
    build,
    lab_namespaces,
    node_address,
    remove_node,
    teardown,
)
from podnet.netlink import DEFAULT_NETNS_DIR, delete_netns, run_in_netns
from podnet.runtime import PodRun, PodRuntime, RuntimePaths
from podnet.runtime._state import Sandbox
from podnet.store import Node, Nodes, open_store

LAB_ROOT = "/run/podnet/labs"
CLUSTER_CIDR = "10.244.0.0/16"
NODE_MASK = 24
RUNTIMES = ("podnet", "containerd")
# containerd 1.6 vendors libcni 1.1, which reads results of CNI spec 1.0.0 at most: a
# 1.1.0 conflist makes every ADD fail with "unsupported CNI result version".
CONTAINERD_CNI_VERSION = "1.0.0"
HEALTH_PORT = 9090  # inside each node's own namespace, so every node can use it
ETCD_PORT = 2379
LAB_MARKER = "PODNET_LAB"  # in the environment of every process a lab starts


class LabError(RuntimeError):
    """Something about the lab that the user must hear in one line."""


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


@dataclass(frozen=True)
class LabPod:
    node: str
    sandbox: Sandbox


class Lab:
    def __init__(self, name: str, *, root: str = LAB_ROOT, netns_dir: str = DEFAULT_NETNS_DIR):
        self.name = name
        self.dir = os.path.join(root, name)
        self.netns_dir = netns_dir

    # ---- layout -------------------------------------------------------------------

    @property
    def state_file(self) -> str:
        return os.path.join(self.dir, "lab.json")

    @property
    def store_url(self) -> str:
        return self.state().get("store") or f"sqlite://{os.path.join(self.dir, 'cluster.db')}"

    def exists(self) -> bool:
        return os.path.exists(self.state_file)

    def state(self) -> dict[str, Any]:
        try:
            with open(self.state_file) as handle:
                data = json.load(handle)
        except FileNotFoundError:
            raise LabError(f"lab {self.name!r} is not up (no {self.state_file})") from None
        assert isinstance(data, dict)
        return data

    def node_names(self) -> list[str]:
        return list(self.state()["nodes"])

    def node_dirs(self, node: str) -> NodeDirs:
        return NodeDirs(os.path.join(self.dir, "nodes", node))

    @property
    def control_plane_netns(self) -> str:
        return os.path.join(self.netns_dir, f"pn-{self.name}-{UNDERLAY_SUFFIX}")

    def in_control_plane(self, func: Callable[[], Any]) -> Any:
        """Run `func` where the store is reachable (an etcd of the lab listens on the
        control-plane address, inside the lab)."""
        return run_in_netns(self.control_plane_netns, func)

    def nodes(self) -> list[Node]:
        def read() -> list[Node]:
            store = open_store(self.store_url)
            try:
                return Nodes(store).list()[0]
            finally:
                store.close()

        result: list[Node] = self.in_control_plane(read)
        return result

    def node(self, node: str) -> LabNode:
        names = self.node_names()
        if node not in names:
            raise LabError(f"lab {self.name!r} has no node {node!r} (nodes: {', '.join(names)})")
        index = self.state().get("index", {}).get(node, names.index(node))
        return LabNode(
            name=node,
            index=index,
            netns=os.path.join(self.netns_dir, f"pn-{self.name}-{node}"),
            address=node_address(index),
        )

    # ---- processes ----------------------------------------------------------------

    def _spawn(
        self, what: str, argv: Sequence[str], log: str, env: dict[str, str] | None = None
    ) -> int:
        """Start a daemon of the lab in a session of its own (a Ctrl-C in the terminal
        is for the CLI only), output appended to `log`, recorded in a PID file. No Popen
        object: the daemon outlives the command that started it. `env` replaces this
        process's environment (containerd hands its own to every plugin)."""
        os.makedirs(os.path.dirname(log), exist_ok=True)
        base = env if env is not None else {**os.environ, **self._plugin_env()}
        env = {**base, LAB_MARKER: self.dir}
        pid = os.posix_spawnp(
            argv[0],
            list(argv),
            env,
            file_actions=[
                (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
                (os.POSIX_SPAWN_OPEN, 1, log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644),
                (os.POSIX_SPAWN_DUP2, 1, 2),
            ],
            setsid=True,
        )
        with open(os.path.join(self.dir, "pids", f"{what}.pid"), "w") as handle:
            handle.write(f"{pid}\n")
        return pid

    def _plugin_env(self) -> dict[str, str]:
        return {"PODNET_LOG_FILE": os.path.join(self.dir, "cni.log")}

    def _podnet(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "podnet.cli.main", *args]

    def _pid_files(self) -> list[str]:
        pids = os.path.join(self.dir, "pids")
        try:
            return sorted(os.path.join(pids, f) for f in os.listdir(pids) if f.endswith(".pid"))
        except FileNotFoundError:
            return []

    def _our_pid(self, pid_file: str) -> int | None:
        """The PID in `pid_file` if that process is still ours (its environment carries
        this lab's marker); a recycled PID belongs to someone else, a zombie is dead."""
        try:
            with open(pid_file) as handle:
                pid = int(handle.read().strip())
        except (OSError, ValueError):
            return None
        for _ in range(50):
            try:
                with open(f"/proc/{pid}/stat", "rb") as handle:
                    state = handle.read().rsplit(b")", 1)[1].split()[0]
                with open(f"/proc/{pid}/environ", "rb") as handle:
                    environ = handle.read()
            except (OSError, IndexError):
                return None
            if state == b"Z":
                return None
            if environ:
                return pid if self._marker() in environ.split(b"\0") else None
            time.sleep(0.005)  # an empty environment: caught in the middle of exec
        return None

    def _marker(self) -> bytes:
        return f"{LAB_MARKER}={self.dir}".encode()

    def process_alive(self, what: str) -> bool:
        return self._our_pid(os.path.join(self.dir, "pids", f"{what}.pid")) is not None

    def stop_processes(self, timeout: float = 5.0) -> list[str]:
        return self._stop_daemons(self._pid_files(), timeout)

    def _stop_daemons(self, pid_files: Sequence[str], timeout: float) -> list[str]:
        """SIGTERM the lab's daemons of `pid_files`, all at once, and wait for them to go
        (SIGKILL after `timeout`); their PID files are removed. Returns the names of
        those that were running."""
        stopped = []
        pids = {}
        for pid_file in pid_files:
            pid = self._our_pid(pid_file)
            if pid is not None:
                pids[pid_file] = pid
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for pid_file, pid in pids.items():
            while self._our_pid(pid_file) is not None and time.monotonic() < deadline:
                time.sleep(0.05)
            if self._our_pid(pid_file) is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            reap(pid)
            stopped.append(os.path.basename(pid_file)[: -len(".pid")])
        for pid_file in pid_files:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(pid_file)
        return stopped

    # ---- up / down ----------------------------------------------------------------

    def up(
        self,
        nodes: int,
        *,
        backend: str = "vxlan",
        store: str | None = None,
        runtime: str = "podnet",
        gc_interval: float = DEFAULT_GC_INTERVAL,
        gc_grace: float = DEFAULT_GC_GRACE,
        progress: Callable[[str], None] = lambda _: None,
        timeout: float = 60.0,
    ) -> None:
        """Build and start a lab of `nodes` nodes. With `runtime="containerd"`, every node
        gets its own containerd, and its agent GCs every `gc_interval` seconds what the
        sandboxes containerd no longer lists left behind (`gc_grace`: see the agent)."""
        if self.exists():
            raise LabError(f"lab {self.name!r} is up already: `podnet lab down` first")
        if runtime not in RUNTIMES:
            raise LabError(f"unknown runtime {runtime!r} (use {' or '.join(RUNTIMES)})")
        if runtime == "containerd" and missing_prerequisites():
            reasons = "; ".join(missing_prerequisites())
            raise LabError(f"containerd cannot run pods on this machine: {reasons}")
        if lab_namespaces(self.name, netns_dir=self.netns_dir):
            teardown(self.name, netns_dir=self.netns_dir)  # leftovers of a crashed lab
        names = [f"n{i + 1}" for i in range(nodes)]
        os.makedirs(os.path.join(self.dir, "pids"), exist_ok=True)
        if store == "etcd":
            url = f"etcd://{CONTROL_PLANE.ip}:{ETCD_PORT}"
        else:
            url = store or f"sqlite://{os.path.join(self.dir, 'cluster.db')}"
        state = {
            "name": self.name,
            "nodes": names,
            "index": {name: i for i, name in enumerate(names)},
            "backend": backend,
            "store": url,
            "runtime": runtime,
            "gc": {"interval": gc_interval, "grace": gc_grace},
        }
        try:
            progress(f"underlay and {nodes} node namespaces on 192.0.2.0/24")
            build(self.name, names, netns_dir=self.netns_dir)
            self._save_state(state)
            if store == "etcd":
                progress(f"etcd on the control plane at {CONTROL_PLANE.ip}:{ETCD_PORT}")
                self._start_etcd(timeout)
            progress(f"store {url}, network {CLUSTER_CIDR} with backend {backend}")
            self._run_cli(
                "network", "set", "--store", url, "--network", CLUSTER_CIDR, "--backend", backend
            )
            progress(f"nodeipam controller: a /{NODE_MASK} per node from {CLUSTER_CIDR}")
            self._spawn(
                "nodeipam",
                [
                    "nsenter",
                    f"--net={self.control_plane_netns}",
                    *self._podnet(
                        "nodeipam",
                        "run",
                        "--cluster-cidr",
                        CLUSTER_CIDR,
                        "--node-cidr-mask-size",
                        str(NODE_MASK),
                        "--store",
                        url,
                    ),
                ],
                os.path.join(self.dir, "logs", "nodeipam.log"),
            )
            if runtime == "containerd":
                for name in names:  # before the agents: kubelet's runtime is there first
                    self._start_containerd(name, progress)
            for name in names:
                self._start_agent(name, url)
            self.wait_ready(progress=progress, timeout=timeout)
        except BaseException:
            self.down()
            raise

    def _start_etcd(self, timeout: float) -> None:
        from podnet.store import LocalEtcd

        peer = f"http://{CONTROL_PLANE.ip}:{ETCD_PORT + 1}"
        client = f"http://{CONTROL_PLANE.ip}:{ETCD_PORT}"
        argv = [
            "nsenter",
            f"--net={self.control_plane_netns}",
            LocalEtcd.binary(),
            "--name=lab",
            f"--data-dir={os.path.join(self.dir, 'etcd')}",
            f"--listen-client-urls={client}",
            f"--advertise-client-urls={client}",
            f"--listen-peer-urls={peer}",
            f"--initial-advertise-peer-urls={peer}",
            f"--initial-cluster=lab={peer}",
            "--initial-cluster-state=new",
            "--heartbeat-interval=10",
            "--election-timeout=100",
            "--log-level=warn",
        ]
        self._spawn("etcd", argv, self.log_path("etcd"))

        def healthy() -> bool:
            conn = http.client.HTTPConnection(str(CONTROL_PLANE.ip), ETCD_PORT, timeout=1)
            try:
                conn.request("GET", "/health")
                return b'"true"' in conn.getresponse().read()
            except OSError:
                return False
            finally:
                conn.close()

        deadline = time.monotonic() + timeout
        while not self.in_control_plane(healthy):
            if not self.process_alive("etcd"):
                raise LabError(f"etcd exited: {self._last_words('etcd')}")
            if time.monotonic() > deadline:
                raise LabError(f"etcd not healthy after {timeout:g}s")
            time.sleep(0.05)

    def _run_cli(self, *args: str) -> None:
        argv = ["nsenter", f"--net={self.control_plane_netns}", *self._podnet(*args)]
        proc = subprocess.run(argv, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise LabError(proc.stderr.strip() or f"podnet {' '.join(args)} failed")

    def _start_agent(self, name: str, url: str) -> None:
        node = self.node(name)
        d = self.node_dirs(name)
        argv = [
            "nsenter",
            f"--net={node.netns}",
            *self._podnet(
                "agent",
                "run",
                "--node",
                name,
                "--iface",
                NODE_UNDERLAY_IF,
                "--store",
                url,
                "--subnet-file",
                d.subnet_file,
                "--bin-dir",
                d.bin_dir,
                "--conf-dir",
                d.conf_dir,
                "--cni-data-dir",
                d.cni_data_dir,
                "--cni-socket",
                d.cni_socket,
                "--healthz-port",
                str(HEALTH_PORT),
                *self._runtime_args(name),
            ),
        ]
        self._spawn(f"agent-{name}", argv, os.path.join(self.dir, "logs", f"agent-{name}.log"))

    def _runtime_args(self, name: str) -> list[str]:
        """A containerd lab's agents write a conflist containerd can read and GC with the
        sandboxes of their node's containerd."""
        state = self.state()
        if state.get("runtime") != "containerd":
            return []
        gc = state.get("gc", {})
        return [
            "--cni-version",
            CONTAINERD_CNI_VERSION,
            "--cri-socket",
            self.containerd(name).socket,
            "--gc-interval",
            str(gc.get("interval", DEFAULT_GC_INTERVAL)),
            "--gc-grace",
            str(gc.get("grace", DEFAULT_GC_GRACE)),
        ]

    # ---- containerd ---------------------------------------------------------------

    @property
    def runtime_name(self) -> str:
        return str(self.state().get("runtime", "podnet"))

    def _cgroup_parent(self, node: str) -> str:
        # Per lab and node, also across lab roots (tests run labs of one name at once).
        tag = hashlib.sha256(self.dir.encode()).hexdigest()[:8]
        return f"/podnet-{self.name}-{node}-{tag}"

    def containerd(self, node: str, *, netns: str | None = None) -> Containerd:
        """The containerd of `node` (taken over by PID if it runs): its work dir is in
        the node's dir, its CNI bin and conf dirs are the ones the node's agent fills."""
        d = self.node_dirs(node)
        containerd = Containerd(
            d.containerd_dir,
            netns=netns if netns is not None else self.node(node).netns,
            cni_bin_dir=d.bin_dir,
            cni_conf_dir=d.conf_dir,
            snapshotter=default_snapshotter(),
            env=self._plugin_env(),
            cgroup_parent=self._cgroup_parent(node),
            spawn=lambda argv, env, log: self._spawn(f"containerd-{node}", argv, log, env=env),
        )
        pid = self._our_pid(os.path.join(self.dir, "pids", f"containerd-{node}.pid"))
        if pid is not None:
            containerd.adopt(pid)
        return containerd

    def _start_containerd(self, name: str, progress: Callable[[str], None]) -> None:
        containerd = self.containerd(name)
        os.makedirs(self.node_dirs(name).conf_dir, exist_ok=True)
        try:
            version = containerd.start()
            with containerd.client() as cri:
                network = cri.network_ready()
        except Exception as exc:  # ContainerdError, CRIError, ImageError: one line
            raise LabError(f"containerd on {name}: {exc}") from None
        progress(
            f"containerd {version.runtime_version} on {name}: NetworkReady "
            f"{str(network.status).lower()} ({network.reason or 'no reason'}) "
            "until the agent installs the conflist"
        )

    def restart_containerd(self, name: str, sig: int = signal.SIGTERM) -> None:
        """Stop a node's containerd with `sig` and start it again on the same state, as
        after a runtime upgrade or crash: pods and their shims keep running."""
        containerd = self.containerd(name)
        try:
            containerd.restart(sig)
        except (ContainerdError, OSError) as exc:
            raise LabError(f"containerd on {name}: {exc}") from None

    def network_ready(self, name: str) -> bool:
        """What kubelet asks before it starts pods: the runtime's NetworkReady."""
        try:
            with self.containerd(name).client(timeout=5.0) as cri:
                return cri.network_ready().status
        except Exception:  # not answering is not ready
            return False

    def _close_containerds(self) -> tuple[list[str], list[str]]:
        """Close every node's containerd (its sandboxes are stopped first: CNI DEL while
        the agents still run); works from the node dirs alone, also after a crash."""
        closed: list[str] = []
        problems: list[str] = []
        nodes_dir = os.path.join(self.dir, "nodes")
        with contextlib.suppress(FileNotFoundError):
            for node in sorted(os.listdir(nodes_dir)):
                if not os.path.isdir(NodeDirs(os.path.join(nodes_dir, node)).containerd_dir):
                    continue
                try:
                    left = self.containerd(node, netns="").close()
                except Exception as exc:  # the rest of the teardown must still happen
                    left = [f"{type(exc).__name__}: {exc}"]
                problems += [f"{node}: {p}" for p in left]
                closed.append(f"containerd-{node}")
        return closed, problems

    def _stop_process(self, what: str, timeout: float = 10.0) -> None:
        """SIGTERM one daemon of the lab and wait for it to go (SIGKILL after `timeout`)."""
        self._stop_daemons([os.path.join(self.dir, "pids", f"{what}.pid")], timeout)

    def restart_agent(self, name: str) -> None:
        """Stop a node's agent (SIGTERM, as a rolling update would) and start it again."""
        self._stop_process(f"agent-{name}")
        self._start_agent(name, self.store_url)

    def agent_ready(self, name: str) -> bool:
        node = self.node(name)

        def ask() -> bool:
            conn = http.client.HTTPConnection("127.0.0.1", HEALTH_PORT, timeout=1)
            try:
                conn.request("GET", "/readyz")
                return conn.getresponse().status == 200
            except OSError:
                return False
            finally:
                conn.close()

        return run_in_netns(node.netns, ask)

    def wait_ready(self, *, progress: Callable[[str], None], timeout: float) -> None:
        waiting = self.node_names()
        deadline = time.monotonic() + timeout
        while waiting:
            for name in list(waiting):
                if not self.process_alive(f"agent-{name}"):
                    raise LabError(
                        f"the agent of {name} exited: {self._last_words(f'agent-{name}')}"
                    )
                if self.agent_ready(name):
                    waiting.remove(name)
                    progress(f"agent on {name} ready")
            if not self.process_alive("nodeipam"):
                raise LabError(f"the nodeipam controller exited: {self._last_words('nodeipam')}")
            if waiting and time.monotonic() > deadline:
                raise LabError(f"agents not ready after {timeout:g}s: {', '.join(waiting)}")
            if waiting:
                time.sleep(0.1)
        if self.runtime_name == "containerd":
            for name in self.node_names():
                self._wait_network_ready(name, deadline, progress)

    def _wait_network_ready(
        self, name: str, deadline: float, progress: Callable[[str], None]
    ) -> None:
        """containerd watches the conf dir: NetworkReady turns true once the agent has
        written its conflist there."""
        while not self.network_ready(name):
            if time.monotonic() > deadline:
                raise LabError(f"containerd on {name}: NetworkReady still false")
            time.sleep(0.05)
        progress(f"containerd on {name}: NetworkReady true (the agent's conflist)")

    def _last_words(self, what: str) -> str:
        """The last line a daemon logged, and where the rest is."""
        path = self.log_path(what)
        try:
            with open(path, errors="replace") as handle:
                lines = [line.strip() for line in handle if line.strip()]
        except OSError:
            lines = []
        return f"{lines[-1] if lines else 'no output'} (log: {path})"

    def _save_state(self, state: dict[str, Any]) -> None:
        atomic_write(self.state_file, json.dumps(state, indent=1).encode())

    def add_node(self, name: str, *, timeout: float = 60.0) -> LabNode:
        """A new node joins: its namespace on the switch, its agent; returns when ready."""
        state = self.state()
        if name in state["nodes"]:
            raise LabError(f"lab {self.name!r} has a node {name!r} already")
        index = max(state.get("index", {}).values(), default=-1) + 1
        underlay = Underlay(lab=self.name, netns_dir=self.netns_dir, netns=self.control_plane_netns)
        node = add_node(underlay, name, index)
        state["nodes"].append(name)
        state.setdefault("index", {})[name] = index
        self._save_state(state)
        if self.runtime_name == "containerd":
            self._start_containerd(name, lambda _: None)
        self._start_agent(name, self.store_url)
        deadline = time.monotonic() + timeout
        while not self.agent_ready(name):
            if not self.process_alive(f"agent-{name}"):
                raise LabError(f"the agent of {name} exited: {self._last_words(f'agent-{name}')}")
            if time.monotonic() > deadline:
                raise LabError(f"the agent of {name} is not ready after {timeout:g}s")
            time.sleep(0.05)
        if self.runtime_name == "containerd":
            self._wait_network_ready(name, deadline, lambda _: None)
        return node

    def remove_node(self, name: str) -> None:
        """A node leaves: its agent stops, its pods go, its Node object is deleted (so the
        controller frees its podCIDR and the other agents drop its routes), and its
        namespace is unplugged and removed."""
        node = self.node(name)
        if os.path.isdir(self.node_dirs(name).containerd_dir):
            # Its pods are stopped (CNI DEL) while the node's agent still runs.
            problems = self.containerd(name).close()
            if problems:
                raise LabError(f"containerd on {name} left: {'; '.join(problems)}")
        self._stop_process(f"agent-{name}")
        netns_dir = self.node_dirs(name).netns_dir
        with contextlib.suppress(FileNotFoundError):
            for pod_ns in os.listdir(netns_dir):
                delete_netns(os.path.join(netns_dir, pod_ns))

        def delete_node_object() -> None:
            store = open_store(self.store_url)
            try:
                Nodes(store).delete(name)
            finally:
                store.close()

        self.in_control_plane(delete_node_object)
        underlay = Underlay(lab=self.name, netns_dir=self.netns_dir, netns=self.control_plane_netns)
        remove_node(underlay, node)
        state = self.state()
        state["nodes"].remove(name)
        self._save_state(state)
        shutil.rmtree(self.node_dirs(name).root, ignore_errors=True)

    def log_path(self, what: str) -> str:
        return os.path.join(self.dir, "logs", f"{what}.log")

    def down(self) -> list[str]:
        """Stop everything the lab started and remove everything it made. Safe to run
        twice and after a crash."""
        closed, problems = self._close_containerds()
        removed = closed + self.stop_processes()
        nodes_dir = os.path.join(self.dir, "nodes")
        with contextlib.suppress(FileNotFoundError):
            for node in os.listdir(nodes_dir):
                netns_dir = NodeDirs(os.path.join(nodes_dir, node)).netns_dir
                with contextlib.suppress(FileNotFoundError):
                    for pod_ns in os.listdir(netns_dir):
                        delete_netns(os.path.join(netns_dir, pod_ns))
                        removed.append(pod_ns)
        removed.extend(teardown(self.name, netns_dir=self.netns_dir))
        shutil.rmtree(self.dir, ignore_errors=True)
        if problems:
            raise LabError(f"the lab is down, but containerd left: {'; '.join(problems)}")
        return removed

    # ---- pods ---------------------------------------------------------------------

    def runtime(self, node: str) -> PodRuntime:
        return PodRuntime(self.node_dirs(node).runtime_paths(), warn=lambda _: None)

    def in_node(self, node: str, func: Callable[[PodRuntime], Any]) -> Any:
        """Run a runtime operation from inside the node's namespace, where plugins must run."""
        netns = self.node(node).netns
        return run_in_netns(netns, lambda: func(self.runtime(node)))

    def pod_run(self, name: str, node: str, namespace: str = "default") -> LabPod:
        """Start a pod on `node`: over CRI on a containerd lab, else with the runtime
        library in the node's namespace."""
        self.node(node)
        for pod in self.pods():  # pod names are unique in the cluster, not just per node
            if (pod.sandbox.name, pod.sandbox.namespace) == (name, namespace):
                raise LabError(f"pod {pod.sandbox.key} exists already, on {pod.node}")
        if self.runtime_name == "containerd":
            try:
                return LabPod(node, run_pod(self.containerd(node), name, namespace))
            except PodError as exc:
                raise LabError(f"{node}: {exc}") from None
        run: PodRun = self.in_node(node, lambda rt: rt.run(name, namespace))
        return LabPod(node, run.sandbox)

    def pod_rm(self, name: str, namespace: str = "default") -> str:
        for pod in self.pods():
            if pod.sandbox.name == name and pod.sandbox.namespace == namespace:
                if self.runtime_name == "containerd":
                    try:
                        remove_pod(self.containerd(pod.node), pod.sandbox.id)
                    except PodError as exc:
                        raise LabError(f"{pod.node}: {exc}") from None
                else:
                    self.in_node(pod.node, lambda rt: rt.remove(name, namespace))
                return pod.node
        raise LabError(f"no pod {namespace}/{name} in lab {self.name!r}")

    def pods(self) -> list[LabPod]:
        found = []
        containerd = self.runtime_name == "containerd"
        for node in self.node_names():
            try:
                sandboxes = list_pods(self.containerd(node)) if containerd else None
            except PodError as exc:
                raise LabError(f"{node}: {exc}") from None
            for sandbox in sandboxes if sandboxes is not None else self.runtime(node).pods():
                found.append(LabPod(node, sandbox))
        return found
