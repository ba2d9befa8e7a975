"""What every check reads, gathered once per run: subnet.env, the conf dir, the Node
objects (through the API when a kubeconfig is given)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from ipaddress import IPv4Network
from typing import Any

from podnet.agent import ipv4_pod_cidr
from podnet.cni import CNIError
from podnet.doctor._config import DoctorConfig
from podnet.plugins.main.bridge import DEFAULT_BRIDGE
from podnet.plugins.meta.flannel import SubnetEnv, load_subnet_env
from podnet.runtime import ConfScan, NetworkConfigList, scan_conf_dir

API_TIMEOUT = 10.0


@dataclass
class Facts:
    config: DoctorConfig
    subnet_env: SubnetEnv | None = None
    subnet_env_error: str = ""
    scan: ConfScan | None = None
    network: NetworkConfigList | None = None  # the conf dir's winner, when valid
    network_error: str = ""
    node: dict[str, Any] | None = None  # this node's object, from the API
    nodes: list[dict[str, Any]] = field(default_factory=list)  # every node, from the API
    api_error: str = ""

    @property
    def pod_cidr(self) -> IPv4Network | None:
        """The node's podCIDR: its Node object's, else what the user said."""
        if self.node is not None:
            spec = self.node.get("spec") or {}
            return ipv4_pod_cidr(spec.get("podCIDR"), spec.get("podCIDRs") or ())
        return self.config.pod_cidr

    @property
    def pod_cidr_source(self) -> str:
        if self.node is not None:
            return f"node {self.config.node_name}'s spec.podCIDR"
        return "--pod-cidr" if self.config.pod_cidr is not None else ""

    @property
    def bridge(self) -> str:
        """The bridge the winning network's pods hang on (flannel delegates to bridge)."""
        for plugin in self.network.plugins if self.network else ():
            if plugin.get("type") == "bridge":
                return str(plugin.get("bridge") or DEFAULT_BRIDGE)
            delegate = plugin.get("delegate")
            if plugin.get("type") == "flannel" and isinstance(delegate, dict):
                return str(delegate.get("bridge") or DEFAULT_BRIDGE)
        return DEFAULT_BRIDGE


def gather(config: DoctorConfig) -> Facts:
    facts = Facts(config)
    try:
        facts.subnet_env = load_subnet_env(config.subnet_file)
    except CNIError as exc:
        facts.subnet_env_error = exc.msg
    facts.scan = scan_conf_dir(config.conf_dir)
    try:
        facts.network = facts.scan.default()
    except CNIError as exc:
        facts.network_error = str(exc)
    if config.kubeconfig:
        _read_nodes(facts)
    return facts


def _read_nodes(facts: Facts) -> None:
    """Every Node through the API, with the official client (raw JSON: annotations and
    spec as the API server wrote them)."""
    from kubernetes import client, config  # only a run that asks for the API pays for it

    try:
        api = config.new_client_from_config(  # type: ignore[no-untyped-call]
            config_file=facts.config.kubeconfig
        )
        with api:
            response: Any = client.CoreV1Api(api).list_node(
                _preload_content=False, _request_timeout=API_TIMEOUT
            )
            listed = json.loads(response.data)
    except Exception as exc:  # any failure of the client: say it, check the rest
        facts.api_error = f"cannot list nodes with {facts.config.kubeconfig}: {exc}"
        return
    facts.nodes = [item for item in listed.get("items") or [] if isinstance(item, dict)]
    for node in facts.nodes:
        if (node.get("metadata") or {}).get("name") == facts.config.node_name:
            facts.node = node
