"""`podnet agent run`: flanneld's job on one node, in order.

1. as flanneld with `--kube-subnet-mgr`: the Node objects come from the Kubernetes API
   (podnet.agent._kube_source; the node's kubelet registered it) and the network config
   from net-conf.json (kube-flannel's ConfigMap, mounted); start the CNI socket, warm;
2. wait for this node's podCIDR (the loop logs why it waits, so a missing nodeipam
   controller is obvious);
3. backend, masquerade rules, subnet.env; publish the lease; reconcile every peer;
4. install-cni: the thin executables (pointed at this agent's socket) and the
   conflist, each atomically: a runtime that sees the conflist finds subnet.env;
5. ready (/readyz), then follow the API server until stopped;
6. with a CRI socket: garbage-collect, periodically, what the runtime's forgotten
   sandboxes left behind (podnet.agent._gc).
"""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass, replace
from typing import Any

from prometheus_client import CollectorRegistry

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
from podnet.agent._hostgw import HOST_GW
from podnet.agent._iface import ExternalInterface, InterfaceOptions, choose_interface
from podnet.agent._kube_client import kube_client
from podnet.agent._kube_source import KubeNodeSource
from podnet.agent._lease import ANNOTATION_PREFIX
from podnet.agent._loop import AgentLoop, AgentSettings, NodeSource, Stopped
from podnet.agent._subnet_env import DEFAULT_SUBNET_FILE
from podnet.agent._traces import RequestLog
from podnet.cni import HostState
from podnet.netlink import Rtnl
from podnet.plugins import default_conflist, install_executables, write_conflist
from podnet.runtime import DEFAULT_BIN_DIR, DEFAULT_CACHE_DIR, DEFAULT_CONF_DIR

log = logging.getLogger("podnet.agent")

# set by an administrator on the Node; flanneld reads them before choosing its interface
NODE_PUBLIC_IP = ANNOTATION_PREFIX + "node-public-ip"
NODE_PUBLIC_IPV6 = ANNOTATION_PREFIX + "node-public-ipv6"

DEFAULT_CNI_DATA_DIR = "/var/lib/cni"
# where kube-flannel's DaemonSet mounts net-conf.json from its ConfigMap
DEFAULT_NET_CONFIG_PATH = "/etc/kube-flannel/net-conf.json"


@dataclass(frozen=True)
class DaemonSettings:
    node: str
    # flanneld's --iface, --iface-regex, --iface-can-reach, --public-ip(v6); none: the
    # default route's interface
    interface: InterfaceOptions = InterfaceOptions()
    kubeconfig: str | None = None  # None: in-cluster credentials
    net_config_path: str = DEFAULT_NET_CONFIG_PATH
    # the conflist to install (kube-flannel's cni-conf.json); None: podnet's default one
    cni_conf_file: str | None = None
    subnet_file: str = DEFAULT_SUBNET_FILE
    bin_dir: str = DEFAULT_BIN_DIR
    conf_dir: str = DEFAULT_CONF_DIR
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


def read_cni_conf(path: str) -> dict[str, Any]:
    """A conflist file to install as it is (flannel's install-conf copies cni-conf.json);
    ConfigError naming the file if it is unreadable or not a conflist."""
    try:
        with open(path, "rb") as handle:
            data = json.loads(handle.read())
    except OSError as exc:
        raise ConfigError(f"cannot read the CNI config {path}: {exc.strerror}") from None
    except ValueError as exc:
        raise ConfigError(f"{path}: not JSON: {exc}") from None
    plugins = data.get("plugins") if isinstance(data, dict) else None
    if not isinstance(plugins, list) or not plugins:
        raise ConfigError(f'{path}: not a conflist (no "plugins" list)')
    return dict(data)


def stored_public_ips(
    source: KubeNodeSource, node: str, options: InterfaceOptions
) -> InterfaceOptions:
    """flanneld's GetStoredPublicIP: the node-public-ip(v6) annotations an administrator
    put on the Node win over --public-ip(v6); a Node that cannot be read changes nothing
    (logged), as in flanneld."""
    try:
        found = source.get_node(node)
    except Exception as exc:  # the API's errors are many; the agent goes on without it
        log.warning("cannot read node %s for its stored public IP: %s", node, exc)
        return options
    if found is None:
        return options
    public_ip = found.annotations.get(NODE_PUBLIC_IP, "")
    public_ipv6 = found.annotations.get(NODE_PUBLIC_IPV6, "")
    if public_ip or public_ipv6:
        log.info("public IP from the node's annotations: %s %s", public_ip, public_ipv6)
    return replace(
        options,
        public_ip=public_ip or options.public_ip,
        public_ipv6=public_ipv6 or options.public_ipv6,
    )


def choose_external_interface(
    options: InterfaceOptions, config: NetworkConfig
) -> ExternalInterface:
    """The interface and addresses this node uses, as flanneld chooses them (in the
    agent's namespace); ConfigError naming the problem if none fits."""
    with Rtnl.open() as rtnl:
        chosen = choose_interface(rtnl, options, ipv4=config.enable_ipv4, ipv6=config.enable_ipv6)
    if config.backend.type == HOST_GW and chosen.public_ip != chosen.address:
        raise ConfigError(
            "your PublicIP differs from interface IP, meaning that probably you're on a NAT, "
            "which is not supported by host-gw backend"
        )
    return chosen


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
        self._conflist: dict[str, Any] | None = None
        self.interface: ExternalInterface | None = None  # chosen when run() starts

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
            config = read_net_conf(s.net_config_path)
            self._conflist = read_cni_conf(s.cni_conf_file) if s.cni_conf_file else None
            source = KubeNodeSource(kube_client(s.kubeconfig))
            try:
                # after the credentials, as flanneld (subnet manager first, then interface)
                options = stored_public_ips(source, s.node, s.interface)
                self.interface = choose_external_interface(options, config)
                self._serve_cni(source, config, stop)
            finally:
                source.close()
        finally:
            if health is not None:
                health.stop()

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

    def _serve(self, source: NodeSource, config: NetworkConfig, stop: threading.Event) -> None:
        s = self.settings
        assert self.interface is not None  # chosen by run()
        loop = AgentLoop(
            source,
            config,
            AgentSettings(
                node=s.node,
                underlay=self.interface.name,
                underlay_ip=self.interface.address,
                public_ip=self.interface.public_ip,
                underlay_ipv6=self.interface.address_v6,
                public_ipv6=self.interface.public_ipv6,
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
        conflist = self._conflist
        if conflist is None:
            custom = s.subnet_file != DEFAULT_SUBNET_FILE or s.cni_data_dir != DEFAULT_CNI_DATA_DIR
            conflist = default_conflist(
                s.cni_version,
                subnet_file=s.subnet_file if custom else None,
                data_dir=s.cni_data_dir if custom else None,
            )
        path = write_conflist(s.conf_dir, conflist)
        log.info("installed the CNI executables in %s and %s", s.bin_dir, path)
