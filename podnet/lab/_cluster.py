"""A whole cluster on one machine: the topology, the store, the nodeipam controller, one
agent per node, and pods started the way a runtime starts them.

Everything lives under one state directory per lab (LAB_ROOT/<name>): the state file, the
sqlite store, PID files and logs of the processes the lab started (`_supervise`), and for
every node the directories a real node has at fixed paths (`_state.NodeDirs`: subnet.env,
CNI bin and conf dirs, CNI data, netns dir, pod records).

A node's container runtime is picked once, by the name the state file records, from
`NODE_RUNTIMES`: podnet's runtime library (`runtime="podnet"`: the lab creates pod
namespaces and runs the chain itself) or a real containerd per node
(`runtime="containerd"`): pods are then started over CRI as kubelet does, containerd
runs the CNI executables the node's agent installed, and each agent garbage-collects
with the sandboxes its node's containerd lists.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import shutil
import signal
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from podnet.agent import DEFAULT_BACKEND, DEFAULT_GC_GRACE, DEFAULT_GC_INTERVAL
from podnet.apiserver import CONTROLLER_MANAGER
from podnet.lab._api import APIError, LabAPI, node_ready, pod_ip, wait_for_pod_ip
from podnet.lab._apiserver import (
    APISERVER_PORT,
    APIServerFiles,
    add_identities,
    delete_node,
    node_user,
    register_node,
    start_apiserver,
    write_net_conf,
)
from podnet.lab._containerd import Containerd
from podnet.lab._containerd_nodes import ContainerdNodes
from podnet.lab._dual_stack import (
    CLUSTER_CIDR_V6,
    NODE_MASK_V6,
    UNDERLAY_NETWORK_V6,
    add_ipv6_underlay,
)
from podnet.lab._errors import LabError
from podnet.lab._etcd import ETCD_PORT, etcd_url, start_etcd
from podnet.lab._lifecycle import GRACE_SECONDS as NODE_MONITOR_GRACE_SECONDS
from podnet.lab._node_runtime import LabSite, NodeRuntime, PodnetNodes
from podnet.lab._restarter import RESTARTER, read_status
from podnet.lab._state import NodeDirs, StateFile, dirs_on_disk, node_dirs
from podnet.lab._supervise import Supervisor, podnet_argv
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
from podnet.runtime import Sandbox
from podnet.store import Node, Nodes, open_store

LAB_ROOT = "/run/podnet/labs"
CLUSTER_CIDR = "10.244.0.0/16"
NODE_MASK = 24
NODE_RUNTIMES: dict[str, Callable[[LabSite], NodeRuntime]] = {
    "podnet": PodnetNodes,
    "containerd": ContainerdNodes,
}
RUNTIMES = tuple(NODE_RUNTIMES)
HEALTH_PORT = 9090  # inside each node's own namespace, so every node can use it
SCHEDULER_DAEMON = "scheduler"
POD_TIMEOUT = 60.0


@dataclass(frozen=True)
class LabPod:
    node: str
    sandbox: Sandbox


class Lab:
    def __init__(self, name: str, *, root: str = LAB_ROOT, netns_dir: str = DEFAULT_NETNS_DIR):
        self.name = name
        self.dir = os.path.join(root, name)
        self.netns_dir = netns_dir
        self.processes = Supervisor(self.dir)
        self._state_file = StateFile(name, os.path.join(self.dir, "lab.json"))

    # ---- layout -------------------------------------------------------------------

    @property
    def state_file(self) -> str:
        return self._state_file.path

    @property
    def store_url(self) -> str:
        return self.state().get("store") or f"sqlite://{os.path.join(self.dir, 'cluster.db')}"

    @property
    def kubeconfig(self) -> str:
        """The admin kubeconfig of the lab's API server."""
        api = self.state().get("apiserver")
        if not api:
            raise LabError(f"lab {self.name!r} runs no API server")
        return str(api["kubeconfig"])

    @property
    def net_conf_path(self) -> str:
        """The cluster network config the agents read (kube-flannel's ConfigMap file)."""
        return os.path.join(self.dir, "net-conf.json")

    def apiserver_files(self) -> APIServerFiles:
        return APIServerFiles(os.path.join(self.dir, "apiserver"))

    def exists(self) -> bool:
        return self._state_file.exists()

    def state(self) -> dict[str, Any]:
        return self._state_file.read()

    def node_names(self) -> list[str]:
        return list(self.state()["nodes"])

    def node_dirs(self, node: str) -> NodeDirs:
        return node_dirs(self.dir, node)

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

    # ---- node runtimes ------------------------------------------------------------

    def _site(self, gc_interval: float, gc_grace: float) -> LabSite:
        return LabSite(
            name=self.name,
            dir=self.dir,
            supervisor=self.processes,
            node_netns=lambda node: self.node(node).netns,
            gc_interval=gc_interval,
            gc_grace=gc_grace,
        )

    @property
    def node_runtime(self) -> NodeRuntime:
        """Every node's container runtime, as the state file names it."""
        state = self.state()
        gc = state.get("gc", {})
        site = self._site(
            gc.get("interval", DEFAULT_GC_INTERVAL), gc.get("grace", DEFAULT_GC_GRACE)
        )
        return NODE_RUNTIMES[str(state.get("runtime", "podnet"))](site)

    def _containerds(self) -> ContainerdNodes:
        return ContainerdNodes(self._site(DEFAULT_GC_INTERVAL, DEFAULT_GC_GRACE))

    def containerd(self, node: str) -> Containerd:
        """The containerd of `node` in a containerd lab (taken over by PID if it runs)."""
        return self._containerds().containerd(node)

    def restart_containerd(self, name: str, sig: int = signal.SIGTERM) -> None:
        """Stop a node's containerd with `sig` and start it again on the same state, as
        after a runtime upgrade or crash: pods and their shims keep running."""
        self._containerds().restart(name, sig)

    def network_ready(self, name: str) -> bool:
        """What kubelet asks a containerd before it starts pods: NetworkReady."""
        return self._containerds().network_ready(name)

    # ---- processes ----------------------------------------------------------------

    def process_alive(self, what: str) -> bool:
        return self.processes.alive(what)

    def stop_processes(self, timeout: float = 5.0) -> list[str]:
        return self.processes.stop_all(timeout)

    def log_path(self, what: str) -> str:
        return self.processes.log_path(what)

    # ---- up / down ----------------------------------------------------------------

    def up(
        self,
        nodes: int,
        *,
        backend: str = DEFAULT_BACKEND,
        store: str | None = None,
        runtime: str = "podnet",
        gc_interval: float = DEFAULT_GC_INTERVAL,
        gc_grace: float = DEFAULT_GC_GRACE,
        second_underlay: bool = False,
        interface_args: Sequence[str] = (),
        node_monitor_grace: float = NODE_MONITOR_GRACE_SECONDS,
        progress: Callable[[str], None] = lambda _: None,
        timeout: float = 60.0,
        dual_stack: bool = False,
    ) -> None:
        """Build and start a lab of `nodes` nodes. With `runtime="containerd"`, every node
        gets its own containerd, and its agent GCs every `gc_interval` seconds what the
        sandboxes containerd no longer lists left behind (`gc_grace`: see the agent).
        `second_underlay`: every node gets a second underlay interface, eth1 on
        192.0.2.128/25; `interface_args`: the agents' interface flags (--iface,
        --iface-regex, --iface-can-reach) instead of `--iface eth0`.
        `dual_stack`: IPv6 beside IPv4, from the underlay to every pod (_dual_stack). A node
        not heard from for `node_monitor_grace` seconds is marked NotReady (the node
        lifecycle controller)."""
        if self.exists():
            raise LabError(f"lab {self.name!r} is up already: `podnet lab down` first")
        if runtime not in NODE_RUNTIMES:
            raise LabError(f"unknown runtime {runtime!r} (use {' or '.join(RUNTIMES)})")
        node_runtime = NODE_RUNTIMES[runtime](self._site(gc_interval, gc_grace))
        node_runtime.check()
        if lab_namespaces(self.name, netns_dir=self.netns_dir):
            teardown(self.name, netns_dir=self.netns_dir)  # leftovers of a crashed lab
        names = [f"n{i + 1}" for i in range(nodes)]
        os.makedirs(self.processes.pids_dir, exist_ok=True)
        if store == "etcd":
            url = etcd_url()
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
            "node_monitor_grace": node_monitor_grace,
            "interface_args": list(interface_args) or ["--iface", NODE_UNDERLAY_IF],
            "dual_stack": dual_stack,
        }
        cluster_cidrs = f"{CLUSTER_CIDR},{CLUSTER_CIDR_V6}" if dual_stack else CLUSTER_CIDR
        try:
            segments = "192.0.2.0/25 and 192.0.2.128/25" if second_underlay else "192.0.2.0/25"
            progress(f"underlay and {nodes} node namespaces on {segments}")
            build(self.name, names, netns_dir=self.netns_dir, second_underlay=second_underlay)
            self._state_file.save(state)
            if dual_stack:
                progress(f"and {UNDERLAY_NETWORK_V6} beside it, forwarding IPv6")
                for name in names:
                    add_ipv6_underlay(self.node(name))
            # Restarts the agents, nodeipam and etcd when they die, as kubelet would.
            self.processes.spawn(
                RESTARTER,
                podnet_argv("lab", "supervise", "--dir", self.dir),
                self.log_path(RESTARTER),
            )
            if store == "etcd":
                progress(f"etcd on the control plane at {CONTROL_PLANE.ip}:{ETCD_PORT}")
                start_etcd(
                    self.processes,
                    self.control_plane_netns,
                    os.path.join(self.dir, "etcd"),
                    timeout,
                )
            progress(f"store {url}, network {cluster_cidrs} with backend {backend}")
            write_net_conf(
                self.net_conf_path,
                CLUSTER_CIDR,
                backend,
                ipv6_network=CLUSTER_CIDR_V6 if dual_stack else None,
            )
            files, port = start_apiserver(
                self.processes,
                lab_dir=self.dir,
                control_plane_netns=self.control_plane_netns,
                store_url=url,
                nodes=names,
                timeout=timeout,
            )
            _private_store(url)
            state["apiserver"] = {"port": port, "kubeconfig": files.admin_kubeconfig}
            self._state_file.save(state)
            progress(
                f"API server on https://{CONTROL_PLANE.ip}:{APISERVER_PORT} for the nodes and "
                f"https://127.0.0.1:{port} for kubectl (`podnet lab kubeconfig`)"
            )
            masks = f"/{NODE_MASK} and /{NODE_MASK_V6}" if dual_stack else f"/{NODE_MASK}"
            progress(f"nodeipam controller: a {masks} per node from {cluster_cidrs}")
            self.processes.spawn(
                "nodeipam",
                [
                    "nsenter",
                    f"--net={self.control_plane_netns}",
                    # Through the API with the controller manager's identity, leader
                    # elected as on a cluster (a restarted one waits out the old lease).
                    *podnet_argv(
                        "nodeipam",
                        "run",
                        "--cluster-cidr",
                        cluster_cidrs,
                        *(
                            [
                                "--node-cidr-mask-size-ipv4",
                                str(NODE_MASK),
                                "--node-cidr-mask-size-ipv6",
                                str(NODE_MASK_V6),
                            ]
                            if dual_stack
                            else ["--node-cidr-mask-size", str(NODE_MASK)]
                        ),
                        "--kubeconfig",
                        files.kubeconfig(CONTROLLER_MANAGER),
                    ),
                ],
                self.log_path("nodeipam"),
                restart=True,
            )
            for name in names:  # before the agents: kubelet's runtime is there first
                node_runtime.start(name, progress)
            for name in names:  # kubelet's registration, with the node's own identity
                register_node(files, name, str(self.node(name).ip))
            for name in names:
                self._start_agent(name, node_runtime)
            self.wait_ready(progress=progress, timeout=timeout)
            for name in names:
                self._start_driver(name)
            self.wait_nodes_ready(names, deadline=time.monotonic() + timeout)
            progress(
                "a sandbox driver per node: Pods bound to a node get a sandbox and an IP; "
                "its heartbeat makes the Node Ready"
            )
            self._start_scheduler()
            self.wait_scheduler(deadline=time.monotonic() + timeout)
            progress("a scheduler: a Pod without a node goes to the node with the fewest pods")
        except BaseException:
            self.down()
            raise

    def _start_driver(self, name: str) -> None:
        argv = podnet_argv(
            "lab", "--name", self.name, "driver", "--node", name,
            "--root", os.path.dirname(self.dir), "--netns-dir", self.netns_dir,
        )  # fmt: skip
        self.processes.spawn(f"driver-{name}", argv, self.log_path(f"driver-{name}"), restart=True)

    def wait_nodes_ready(self, names: list[str], *, deadline: float) -> None:
        """Until every named Node is Ready in the API (its driver's first heartbeat)."""
        with self.api() as api:
            while True:
                ready = {str(n["metadata"]["name"]) for n in api.list_nodes() if node_ready(n)}
                waiting = [name for name in names if name not in ready]
                if not waiting:
                    return
                for name in waiting:
                    if not self.process_alive(f"driver-{name}"):
                        raise LabError(
                            f"the sandbox driver of {name} exited: "
                            f"{self.processes.last_words(f'driver-{name}')}"
                        )
                if time.monotonic() > deadline:
                    raise LabError(f"nodes not Ready in the API: {', '.join(waiting)}")
                time.sleep(0.1)

    def wait_scheduler(self, *, deadline: float) -> None:
        """Until the scheduler holds its Lease (it follows the pods)."""
        with self.api() as api:
            while not api.lease_holder("kube-system", "kube-scheduler"):
                if not self.process_alive(SCHEDULER_DAEMON):
                    raise LabError(
                        f"the scheduler exited: {self.processes.last_words(SCHEDULER_DAEMON)}"
                    )
                if time.monotonic() > deadline:
                    raise LabError(
                        "the scheduler does not hold its Lease (kube-system/kube-scheduler)"
                    )
                time.sleep(0.1)

    def _start_scheduler(self) -> None:
        argv = podnet_argv(
            "lab", "--name", self.name, "scheduler",
            "--root", os.path.dirname(self.dir), "--netns-dir", self.netns_dir,
        )  # fmt: skip
        self.processes.spawn(SCHEDULER_DAEMON, argv, self.log_path(SCHEDULER_DAEMON), restart=True)

    def _start_agent(self, name: str, node_runtime: NodeRuntime) -> None:
        """The node's agent as kube-flannel's DaemonSet runs it: `--kube-subnet-mgr`, the
        node's own identity (its kubeconfig names the API server inside the lab) and the
        network config file."""
        node = self.node(name)
        argv = [
            "nsenter",
            f"--net={node.netns}",
            *podnet_argv(
                "agent",
                "run",
                "--kube-subnet-mgr",
                "--net-config-path",
                self.net_conf_path,
                *self.state().get("interface_args", ["--iface", NODE_UNDERLAY_IF]),
                *self._node_flags(name),
                *node_runtime.agent_args(name),
            ),
        ]
        self.processes.spawn(f"agent-{name}", argv, self.log_path(f"agent-{name}"), restart=True)

    def trace_argvs(self, pod: str, namespace: str = "default", *extra: str) -> list[list[str]]:
        """`podnet trace pod` for a pod, inside a node, asking that node's agent: the
        pod's node while the pod runs, else every node (its DEL was the last word)."""
        nodes = [
            p.node for p in self.pods() if (p.sandbox.namespace, p.sandbox.name) == (namespace, pod)
        ] or self.node_names()
        return [
            [
                "nsenter",
                f"--net={self.node(node).netns}",
                *podnet_argv(
                    "trace", "pod", f"{namespace}/{pod}", "--healthz-port", str(HEALTH_PORT), *extra
                ),
            ]
            for node in nodes
        ]

    def doctor_argv(self, name: str, *extra: str) -> list[str]:
        """`podnet doctor` for a node: inside its namespace, with its paths, its agent's
        health port, its own identity to read the Node objects, and its runtime."""
        node = self.node(name)
        return [
            "nsenter",
            f"--net={node.netns}",
            *podnet_argv(
                "doctor", *self._node_flags(name), *self.node_runtime.doctor_args(name), *extra
            ),
        ]

    def _node_flags(self, name: str) -> list[str]:
        """What `podnet agent run` and `podnet doctor` both take for a node: its name and
        own identity (its kubeconfig names the API server inside the lab), its paths and
        its agent's health port."""
        d = self.node_dirs(name)
        return [
            "--node-name", name,
            "--kubeconfig", self.apiserver_files().kubeconfig(node_user(name)),
            "--subnet-file", d.subnet_file,
            "--bin-dir", d.bin_dir,
            "--conf-dir", d.conf_dir,
            "--cni-data-dir", d.cni_data_dir,
            "--cni-socket", d.cni_socket,
            "--healthz-port", str(HEALTH_PORT),
        ]  # fmt: skip

    def restart_agent(self, name: str) -> None:
        """Stop a node's agent (SIGTERM, as a rolling update would) and start it again."""
        self.processes.stop(f"agent-{name}")
        self._start_agent(name, self.node_runtime)

    def agent_status(self, name: str) -> tuple[str, int]:
        """(state, restart count) of a node's agent: Ready or NotReady while it runs,
        else what the lab's restarter says (CrashLoopBackOff while it waits to start it
        again), or Down when nothing will."""
        what = f"agent-{name}"
        known = read_status(self.dir).get(what, {})
        restarts = int(known.get("restarts", 0))
        if self.process_alive(what):
            return ("Ready" if self.agent_ready(name) else "NotReady"), restarts
        if known and self.process_alive(RESTARTER):
            return str(known.get("state") or "Down"), restarts
        return "Down", restarts

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
                        f"the agent of {name} exited: {self.processes.last_words(f'agent-{name}')}"
                    )
                if self.agent_ready(name):
                    waiting.remove(name)
                    progress(f"agent on {name} ready")
            if not self.process_alive("nodeipam"):
                raise LabError(
                    f"the nodeipam controller exited: {self.processes.last_words('nodeipam')}"
                )
            if waiting and time.monotonic() > deadline:
                raise LabError(f"agents not ready after {timeout:g}s: {', '.join(waiting)}")
            if waiting:
                time.sleep(0.1)
        node_runtime = self.node_runtime
        for name in self.node_names():
            node_runtime.wait_ready(name, deadline, progress)

    def add_node(self, name: str, *, timeout: float = 60.0) -> LabNode:
        """A new node joins: its namespace on the switch, its agent; returns when ready."""
        state = self.state()
        if name in state["nodes"]:
            raise LabError(f"lab {self.name!r} has a node {name!r} already")
        index = max(state.get("index", {}).values(), default=-1) + 1
        underlay = Underlay(lab=self.name, netns_dir=self.netns_dir, netns=self.control_plane_netns)
        node = add_node(underlay, name, index)
        if state.get("dual_stack"):
            add_ipv6_underlay(node)
        state["nodes"].append(name)
        state.setdefault("index", {})[name] = index
        self._state_file.save(state)
        api = state.get("apiserver")
        if api:
            add_identities(self.apiserver_files(), [name], int(api["port"]))
        node_runtime = self.node_runtime
        node_runtime.start(name, lambda _: None)
        register_node(self.apiserver_files(), name, str(node.ip))
        self._start_agent(name, node_runtime)
        deadline = time.monotonic() + timeout
        while not self.agent_ready(name):
            if not self.process_alive(f"agent-{name}"):
                raise LabError(
                    f"the agent of {name} exited: {self.processes.last_words(f'agent-{name}')}"
                )
            if time.monotonic() > deadline:
                raise LabError(f"the agent of {name} is not ready after {timeout:g}s")
            time.sleep(0.05)
        node_runtime.wait_ready(name, deadline, lambda _: None)
        if api:
            self._start_driver(name)
            self.wait_nodes_ready([name], deadline=deadline)
        return node

    def remove_node(self, name: str) -> None:
        """A node leaves: its agent stops, its pods go, its Node object is deleted (so the
        controller frees its podCIDR and the other agents drop its routes), and its
        namespace is unplugged and removed."""
        node = self.node(name)
        self.processes.stop(f"driver-{name}")
        self._delete_pods_of(name)
        self.node_runtime.stop_node(name)
        self.processes.stop(f"agent-{name}")
        _delete_pod_namespaces(self.node_dirs(name))

        delete_node(self.apiserver_files(), name)
        underlay = Underlay(lab=self.name, netns_dir=self.netns_dir, netns=self.control_plane_netns)
        remove_node(underlay, node)
        state = self.state()
        state["nodes"].remove(name)
        self._state_file.save(state)
        shutil.rmtree(self.node_dirs(name).root, ignore_errors=True)

    def _delete_pods_of(self, node: str) -> None:
        """The Pod objects bound to a node that leaves go with it (kube-controller-manager's
        pod GC does this for a deleted Node); its sandboxes are stopped with the node."""
        if not self.state().get("apiserver"):
            return
        with self.api() as api:
            for pod in api.list_pods():
                meta = pod["metadata"]
                if (pod.get("spec") or {}).get("nodeName") == node:
                    with contextlib.suppress(APIError):  # no driver is left to wait for
                        api.delete_pod(str(meta["name"]), str(meta["namespace"]), grace_seconds=0)

    def down(self) -> list[str]:
        """Stop everything the lab started and remove everything it made. Safe to run
        twice and after a crash: the node runtimes close what the node dirs show, the
        daemons go by their PID files."""
        closed, problems = self._runtime_for_teardown().close_all()
        removed = closed + self.stop_processes()
        for d in dirs_on_disk(self.dir):
            removed += _delete_pod_namespaces(d)
        removed.extend(teardown(self.name, netns_dir=self.netns_dir))
        shutil.rmtree(self.dir, ignore_errors=True)
        if problems:
            raise LabError(f"the lab is down, but containerd left: {'; '.join(problems)}")
        return removed

    def _runtime_for_teardown(self) -> NodeRuntime:
        """The lab's node runtime; without a state file (a lab whose `up` failed before
        saving it) no runtime was started, and the one with nothing to close serves."""
        if not self.exists():
            return PodnetNodes(self._site(DEFAULT_GC_INTERVAL, DEFAULT_GC_GRACE))
        return self.node_runtime

    # ---- pods ---------------------------------------------------------------------

    def api(self) -> LabAPI:
        """The lab's API server, as its admin."""
        return LabAPI(self.kubeconfig)

    def pod_run(
        self,
        name: str,
        node: str | None = None,
        namespace: str = "default",
        *,
        ports: Sequence[Mapping[str, Any]] = (),
        timeout: float = POD_TIMEOUT,
    ) -> LabPod:
        """Create a Pod object (bound to `node`, or left to the lab's scheduler) and wait
        until the node's sandbox driver has started its sandbox and written its IP. `ports`
        are its hostPorts (portMappings entries: hostPort, containerPort, protocol[,
        hostIP]), carried in the Pod's container ports, which the driver hands to the
        runtime as kubelet does. A pod whose sandbox fails to start is deleted again, and
        the node's words raised."""
        if node is not None:
            self.node(node)
        deadline = time.monotonic() + timeout
        with self.api() as api:
            try:
                created = api.create_pod(name, namespace, node, ports=ports)
            except APIError as exc:
                raise LabError(f"pod {namespace}/{name}: {exc}") from None
            try:
                pod = wait_for_pod_ip(
                    api, created, deadline, failed_reasons=("FailedCreatePodSandBox",)
                )
            except LabError as exc:
                if "has no IP yet" not in str(exc):  # its sandbox failed: nothing runs
                    with contextlib.suppress(LabError):
                        api.delete_pod(name, namespace, grace_seconds=0)
                raise LabError(f"pod {namespace}/{name}: {exc}") from None
        bound = str(pod["spec"]["nodeName"])
        key = f"{namespace}/{name}"
        sandbox = next((s for s in self.node_runtime.pods(bound) if s.key == key), None)
        if sandbox is None:
            raise LabError(f"pod {key} has the IP {pod_ip(pod)} but no sandbox on {bound}")
        return LabPod(bound, sandbox)

    def pod_rm(self, name: str, namespace: str = "default", *, timeout: float = POD_TIMEOUT) -> str:
        """Delete the Pod object and wait until its node's driver has stopped the sandbox
        (CNI DEL: the address is free); returns the node it ran on."""
        key = f"{namespace}/{name}"
        with self.api() as api:
            try:
                deleted = api.delete_pod(name, namespace)
            except APIError as exc:
                if exc.code == 404:
                    raise LabError(f"no pod {key} in lab {self.name!r}") from None
                raise LabError(f"pod {key}: {exc}") from None
            node = str((deleted.get("spec") or {}).get("nodeName") or "")
            if not node:  # never scheduled: no sandbox to stop
                return "<none>"
            # Deleted gracefully: the node's driver stops the sandbox (CNI DEL), then
            # removes the Pod for good.
            node_runtime = self.node_runtime
            deadline = time.monotonic() + timeout
            while _exists(api, name, namespace) or any(
                s.key == key for s in node_runtime.pods(node)
            ):
                if time.monotonic() > deadline:
                    raise LabError(
                        f"pod {key} is terminating, but {node}'s driver has not stopped it "
                        f"after {timeout:g}s (log: {self.log_path(f'driver-{node}')})"
                    )
                time.sleep(0.05)
        return node

    def pod_objects(self) -> list[dict[str, Any]]:
        """Every Pod object of the lab's API server."""
        with self.api() as api:
            return api.list_pods()

    def pods(self) -> list[LabPod]:
        node_runtime = self.node_runtime
        return [
            LabPod(node, sandbox)
            for node in self.node_names()
            for sandbox in node_runtime.pods(node)
        ]


def _exists(api: LabAPI, name: str, namespace: str) -> bool:
    try:
        api.get_pod(name, namespace)
    except APIError as exc:
        if exc.code == 404:
            return False
        raise
    return True


def _private_store(url: str) -> None:
    """The sqlite file (and its WAL) readable by root alone: only the lab's API server
    opens it (nodeipam and the agents are its clients)."""
    if not url.startswith("sqlite://"):
        return
    path = url.removeprefix("sqlite://")
    for name in (path, f"{path}-wal", f"{path}-shm"):
        with contextlib.suppress(FileNotFoundError):
            os.chmod(name, 0o600)


def _delete_pod_namespaces(d: NodeDirs) -> list[str]:
    """Remove the pod namespaces left in a node's netns dir; returns their names."""
    removed = []
    with contextlib.suppress(FileNotFoundError):
        for pod_ns in os.listdir(d.netns_dir):
            delete_netns(os.path.join(d.netns_dir, pod_ns))
            removed.append(pod_ns)
    return removed
