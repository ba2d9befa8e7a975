"""`podnet agent run`: flanneld's job on one node, in order.

1. with `--kube-subnet-mgr` (flanneld's default mode): the Node objects come from the
   Kubernetes API (podnet.agent._kube_source) and the network config from net-conf.json
   (kube-flannel's ConfigMap file); the node is registered by its kubelet. Store-direct:
   register this node in the store with its underlay address (kubelet's job, done here as
   there is no kubelet) and wait for the network config in the store.
   Either way, start the CNI socket, warm;
2. wait for this node's podCIDR (the loop logs why it waits, so a missing nodeipam
   controller is obvious);
3. backend, masquerade rules, subnet.env; publish the lease; reconcile every peer;
4. install-cni: the thin executables (pointed at this agent's socket) and the
   conflist, each atomically: a runtime that sees the conflist finds subnet.env;
5. ready (/readyz), then follow the store until stopped;
6. with a CRI socket: garbage-collect, periodically, what the runtime's forgotten
   sandboxes left behind (podnet.agent._gc).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

from prometheus_client import CollectorRegistry

from podnet.agent._backend import public_address
from podnet.agent._cni_server import DEFAULT_SOCKET, CNIServer
from podnet.agent._config import ConfigError, NetworkConfig
from podnet.agent._gate import Gate
from podnet.agent._gc import (
    DEFAULT_GC_GRACE,
    DEFAULT_GC_INTERVAL,
    GarbageCollector,
    InProcessExec,
)
from podnet.agent._health import HealthServer
from podnet.agent._kube_client import kube_client
from podnet.agent._kube_source import KubeNodeSource
from podnet.agent._loop import AgentLoop, AgentSettings, NodeSource, Stopped
from podnet.agent._netconf_store import read_network_config
from podnet.agent._store_source import StoreNodeSource
from podnet.agent._subnet_env import DEFAULT_SUBNET_FILE
from podnet.agent._traces import RequestLog
from podnet.cni import HostState
from podnet.netlink import Rtnl
from podnet.plugins import default_conflist, install_executables, write_conflist
from podnet.runtime import DEFAULT_CACHE_DIR
from podnet.store import AlreadyExists, Nodes, Store, open_store

log = logging.getLogger("podnet.agent")

DEFAULT_CNI_DATA_DIR = "/var/lib/cni"
# where kube-flannel's DaemonSet mounts net-conf.json from its ConfigMap
DEFAULT_NET_CONFIG_PATH = "/etc/kube-flannel/net-conf.json"


@dataclass(frozen=True)
class DaemonSettings:
    node: str
    underlay: str
    store_url: str | None = None  # store-direct; None with kube_subnet_mgr
    kube_subnet_mgr: bool = False
    kubeconfig: str | None = None  # None: in-cluster credentials
    net_config_path: str = DEFAULT_NET_CONFIG_PATH
    subnet_file: str = DEFAULT_SUBNET_FILE
    bin_dir: str = "/opt/cni/bin"
    conf_dir: str = "/etc/cni/net.d"
    cni_data_dir: str = DEFAULT_CNI_DATA_DIR
    cni_socket: str = DEFAULT_SOCKET
    cni_version: str = "1.1.0"
    ip_masq: bool = True
    health_address: str = "127.0.0.1"
    health_port: int | None = None  # None: no health server
    poll: float = 0.5
    # GC needs the runtime's CRI socket (None: no GC); the runtime's libcni cache dir is
    # where containerd keeps its results (fixed at /var/lib/cni in containerd 1.6).
    cri_socket: str | None = None
    gc_interval: float = DEFAULT_GC_INTERVAL
    gc_grace: float = DEFAULT_GC_GRACE
    runtime_cache_dir: str = DEFAULT_CACHE_DIR


def read_net_conf(path: str) -> NetworkConfig:
    """net-conf.json from a file (kube-flannel's ConfigMap, mounted); ConfigError if
    missing, unreadable or invalid, naming the file."""
    try:
        with open(path, "rb") as handle:
            text = handle.read()
    except OSError as exc:
        raise ConfigError(f"cannot read the network config {path}: {exc.strerror}") from None
    try:
        return NetworkConfig.from_json(text)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None


class Agent:
    def __init__(self, settings: DaemonSettings) -> None:
        self.settings = settings
        self.ready = threading.Event()
        self.loop: AgentLoop | None = None
        self.cni: CNIServer | None = None
        self.gate = Gate()
        # What the plugins keep across requests, for the CNI server and GC alike.
        self.host_state = HostState()
        # Prometheus metrics beyond the gauges of `metrics()`, and the traces of CNI requests.
        self.registry = CollectorRegistry()
        self.requests = RequestLog(self.registry)
        self.gc: GarbageCollector | None = None

    def metrics(self) -> dict[str, float]:
        peers = self.loop.peer_count if self.loop is not None else 0
        values = {
            "podnet_agent_ready": 1.0 if self.ready.is_set() else 0.0,
            "podnet_agent_peers": float(peers),
            "podnet_agent_cni_requests_total": float(self.cni.served if self.cni else 0),
        }
        if self.gc is not None:
            values["podnet_agent_gc_rounds_total"] = float(self.gc.rounds)
            values["podnet_agent_gc_released_addresses_total"] = float(self.gc.freed_total)
        return values

    def run(self, stop: threading.Event) -> None:
        s = self.settings
        health = None
        if s.health_port is not None:
            health = HealthServer(
                s.health_address,
                s.health_port,
                ready=self.ready.is_set,
                metrics=self.metrics,
                registry=self.registry,
                traces=self.requests.ring.to_json,
            )
            health.start()
            log.info("health endpoints on %s:%d", s.health_address, health.port)
        try:
            if s.kube_subnet_mgr:
                self._run_kube(stop)
            else:
                self._run_store(stop)
        finally:
            if health is not None:
                health.stop()

    def _run_kube(self, stop: threading.Event) -> None:
        config = read_net_conf(self.settings.net_config_path)
        source = KubeNodeSource(kube_client(self.settings.kubeconfig))
        try:
            self._serve_cni(source, config, stop)
        finally:
            source.close()

    def _run_store(self, stop: threading.Event) -> None:
        assert self.settings.store_url is not None
        store = open_store(self.settings.store_url)
        try:
            nodes = Nodes(store)
            self._register(nodes)
            config = self._wait_for_config(store, stop)
            self._serve_cni(StoreNodeSource(nodes), config, stop)
        finally:
            store.close()

    def _serve_cni(self, source: NodeSource, config: NetworkConfig, stop: threading.Event) -> None:
        self.cni = CNIServer(
            self.settings.cni_socket,
            gate=self.gate,
            host_state=self.host_state,
            requests=self.requests,
        )
        self.cni.warm()
        self.cni.start()
        try:
            self._serve(source, config, stop)
        finally:
            self.cni.stop()

    def _register(self, nodes: Nodes) -> None:
        with Rtnl.open() as rtnl:
            address = public_address(rtnl, self.settings.underlay)
        try:
            nodes.register(self.settings.node, addresses=[str(address)])
            log.info("registered node %s with address %s", self.settings.node, address)
        except AlreadyExists:
            log.info("node %s is registered already", self.settings.node)

    def _wait_for_config(self, store: Store, stop: threading.Event) -> NetworkConfig:
        while True:
            config = read_network_config(store)
            if config is not None:
                return config
            log.info("no network config in the store yet: set one with `podnet network set`")
            if stop.wait(self.settings.poll):
                raise Stopped("stopped while waiting for the network config")

    def _serve(self, source: NodeSource, config: NetworkConfig, stop: threading.Event) -> None:
        s = self.settings
        loop = AgentLoop(
            source,
            config,
            AgentSettings(
                node=s.node,
                underlay=s.underlay,
                subnet_file=s.subnet_file,
                ip_masq=s.ip_masq,
                poll=s.poll,
            ),
        )
        self.loop = loop
        runner = threading.Thread(target=self._run_loop, args=(loop, stop), name="agent-loop")
        runner.start()
        try:
            while not loop.ready.wait(0.2):
                if stop.is_set() or not runner.is_alive():
                    return
            self._install_cni()
            self.ready.set()
            log.info("node %s is ready", s.node)
            if s.cri_socket is None:
                stop.wait()
            else:
                self._collect_garbage(s.cri_socket, stop)
        finally:
            stop.set()
            runner.join()

    def _run_loop(self, loop: AgentLoop, stop: threading.Event) -> None:
        try:
            loop.run(stop)
        except Stopped:
            pass
        except Exception:
            log.exception("the agent loop failed")
            stop.set()

    def _collect_garbage(self, cri_socket: str, stop: threading.Event) -> None:
        """GC rounds until stopped, with the valid set from the runtime's sandboxes."""
        from podnet.cri import CRIClient  # grpc is imported only by agents that GC

        s = self.settings
        client = CRIClient(cri_socket, timeout=10.0)
        try:
            self.gc = GarbageCollector(
                conf_dir=s.conf_dir,
                bin_dir=s.bin_dir,
                list_sandboxes=lambda: [sandbox.id for sandbox in client.list_pod_sandbox()],
                gate=self.gate,
                cache_dir=s.runtime_cache_dir,
                grace=s.gc_grace,
                exec_=InProcessExec(self.host_state),
            )
            log.info(
                "GC every %gs (grace %gs) with the sandboxes of the runtime at %s",
                s.gc_interval,
                s.gc_grace,
                cri_socket,
            )
            self.gc.run(stop, s.gc_interval)
        finally:
            client.close()

    def _install_cni(self) -> None:
        s = self.settings
        install_executables(s.bin_dir, agent_socket=s.cni_socket, warn=log.warning)
        custom = s.subnet_file != DEFAULT_SUBNET_FILE or s.cni_data_dir != DEFAULT_CNI_DATA_DIR
        conflist = default_conflist(
            s.cni_version,
            subnet_file=s.subnet_file if custom else None,
            data_dir=s.cni_data_dir if custom else None,
        )
        path = write_conflist(s.conf_dir, conflist)
        log.info("installed the CNI executables in %s and %s", s.bin_dir, path)
