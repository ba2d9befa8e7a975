"""deploy/kube-podnet.yml: valid against the Kubernetes schemas, RBAC exactly what the agent
does, and its DaemonSet run as a kubelet would run it on a lab node (the init container and
the agent: command, args with $(VAR) expanded, env, hostPath and ConfigMap mounts in a
mount namespace of their own, the node's network namespace, in-cluster credentials, the
readiness and liveness probes). The manifest is parsed here, never copied, so the two
cannot drift apart."""

from __future__ import annotations

import csv
import http.client
import json
import os
import re
import secrets
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path
from typing import Any

import httpx
import kubernetes_validate
import pytest
import yaml

from podnet.lab import Lab, lab_namespaces
from podnet.netlink import Rtnl, add_default_route, run_in_netns
from podnet.store import open_store
from tests.agent.cluster import Cluster, pod_cidr
from tests.agent.test_kube_source import KubeAgent, register, set_pod_cidr
from tests.apiserver.conftest import start_cluster

MANIFEST = Path(__file__).resolve().parents[2] / "deploy" / "kube-podnet.yml"
SCHEMA_VERSIONS = ["1.28.0", kubernetes_validate.utils.latest_version()]
SERVICE_ACCOUNT = "/var/run/secrets/kubernetes.io/serviceaccount"


def documents() -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(MANIFEST.read_text()) if doc]


def find(kind: str, name: str | None = None) -> dict[str, Any]:
    found = [d for d in documents() if d["kind"] == kind]
    if name is not None:
        found = [d for d in found if d["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind} {name or ''}: {len(found)} documents"
    return found[0]


def agent_pod() -> dict[str, Any]:
    daemonset = next(
        d
        for d in documents()
        if d["kind"] == "DaemonSet"
        and "--kube-subnet-mgr" in d["spec"]["template"]["spec"]["containers"][0]["args"]
    )
    spec: dict[str, Any] = daemonset["spec"]["template"]["spec"]
    return spec


@pytest.mark.parametrize("version", SCHEMA_VERSIONS)
def test_every_document_is_valid_against_the_kubernetes_schemas(version: str) -> None:
    for doc in documents():
        kubernetes_validate.validate(doc, version, strict=True)


def test_every_document_has_a_comment_heading() -> None:
    chunks = MANIFEST.read_text().split("\n---\n")[1:]
    assert chunks, "no documents separated by ---"
    for chunk in chunks:
        assert chunk.startswith("# "), f"a document without a heading: {chunk[:60]!r}"


def test_the_daemonset_is_kube_flannels_shape() -> None:
    pod = agent_pod()
    assert pod["hostNetwork"] is True
    assert {"operator": "Exists", "effect": "NoSchedule"} in pod["tolerations"]
    (init,) = pod["initContainers"]
    assert init["command"] == ["podnet"] and init["args"][0] == "install-cni"
    (agent,) = pod["containers"]
    assert agent["args"][:2] == ["agent", "run"] and "--kube-subnet-mgr" in agent["args"]
    added = set(agent["securityContext"]["capabilities"]["add"])
    assert {"NET_ADMIN", "NET_RAW"} <= added
    mounts = {m["mountPath"].rstrip("/") for m in agent["volumeMounts"]}
    assert {"/run/flannel", "/etc/cni/net.d", "/opt/cni/bin", "/etc/kube-flannel"} <= mounts
    names = {e["name"]: e["valueFrom"]["fieldRef"]["fieldPath"] for e in agent["env"]}
    assert names["NODE_NAME"] == "spec.nodeName"
    binding = find("ClusterRoleBinding", "podnet")
    account = find("ServiceAccount", pod["serviceAccountName"])
    assert pod["serviceAccountName"] == account["metadata"]["name"]
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "podnet", "namespace": account["metadata"]["namespace"]}
    ]


# ---- RBAC: exactly the requests the agent makes ----------------------------------------

_NODE_PATH = re.compile(r"^/api/v1/nodes(?:/(?P<name>[^/]+)(?:/(?P<sub>[a-z]+))?)?$")


def rbac_request(request: httpx.Request) -> tuple[str, str]:
    """(resource, verb) as the API server's authorizer names a request."""
    match = _NODE_PATH.match(request.url.path)
    assert match, f"the agent asked for {request.url.path}, which is no nodes path"
    resource = "nodes" + (f"/{match['sub']}" if match["sub"] else "")
    method = request.method
    if method == "GET":
        if match["name"]:
            return resource, "get"
        return resource, "watch" if request.url.params.get("watch") == "true" else "list"
    return resource, {"PATCH": "patch", "PUT": "update", "POST": "create"}[method]


def granted() -> set[tuple[str, str]]:
    rules = find("ClusterRole", "podnet")["rules"]
    return {(res, verb) for rule in rules for res in rule["resources"] for verb in rule["verbs"]}


@pytest.mark.root
def test_the_cluster_role_grants_exactly_what_the_agent_asks_for(tmp_path: Path) -> None:
    """The agent (the loop in a lab netns against the API server) with every request it
    makes recorded: the set of (resource, verb) is the ClusterRole's, no more, no less."""
    store = open_store(f"sqlite://{tmp_path}/cluster.db")
    api = start_cluster(store, tmp_path)
    netns_dir = tmp_path / "netns"
    netns_dir.mkdir()
    cluster = Cluster.build("r" + secrets.token_hex(5), str(netns_dir), str(tmp_path / "s"), 1)
    asked: set[tuple[str, str]] = set()
    agent = None
    try:
        register(api, "n1")
        agent = KubeAgent(api, cluster, "n1")
        # lightkube's httpx client; its request hook records every request from now on
        # (the podCIDR comes next, so the agent's whole start is recorded)
        agent.source.client._client._client.event_hooks["request"].append(
            lambda request: asked.add(rbac_request(request))
        )
        set_pod_cidr(api, "n1", str(pod_cidr(cluster.nodes[0])))
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not (
            agent.loop.ready.is_set() and ("nodes/status", "patch") in asked
        ):
            time.sleep(0.05)
        assert agent.loop.ready.is_set()
    finally:
        if agent is not None:
            agent.close()
        cluster.destroy()
        for client in api.clients:
            client.close()
        api.server.close()
        store.close()
    assert asked == granted()


# ---- the DaemonSet, run as kubelet runs it, on a lab node ------------------------------


def expand(text: str, env: dict[str, str]) -> str:
    """kubelet's $(VAR) expansion of command and args."""
    return re.sub(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)", lambda m: env.get(m[1], m[0]), text)


class Kubelet:
    """Runs a container of the manifest's pod on a lab node: a mount namespace of its own
    with every volumeMount in place (hostPath volumes are directories standing for the
    host's paths, ConfigMap volumes hold the ConfigMap's files), the service account's
    credentials, and the node's network namespace (hostNetwork)."""

    def __init__(self, lab: Lab, node: str, pod: dict[str, Any], work: Path) -> None:
        self.lab, self.node, self.pod, self.work = lab, node, pod, work
        self.host = work / "host"  # the node's filesystem, as hostPath sees it
        self.volumes: dict[str, Path] = {}
        for volume in pod["volumes"]:
            self.volumes[volume["name"]] = self._volume(volume)
        files = lab.apiserver_files()
        account = work / "serviceaccount"
        account.mkdir()
        (account / "token").write_text(_token_of(files.tokens, f"system:node:{node}"))
        (account / "ca.crt").write_text(Path(files.pki, "ca.crt").read_text())
        (account / "namespace").write_text(find("Namespace")["metadata"]["name"])
        self.account = account

    def _volume(self, volume: dict[str, Any]) -> Path:
        if "hostPath" in volume:
            path = self.host / str(volume["hostPath"]["path"]).lstrip("/")
            path.mkdir(parents=True, exist_ok=True)
            return path
        config_map = find("ConfigMap", volume["configMap"]["name"])
        path = self.work / "configmaps" / str(volume["name"])
        path.mkdir(parents=True)
        for key, value in config_map["data"].items():
            (path / key).write_text(value)
        return path

    def env(self, container: dict[str, Any]) -> dict[str, str]:
        fields = {"spec.nodeName": self.node, "status.podIP": str(self.lab.node(self.node).ip)}
        env = {
            "PATH": f"{os.path.dirname(sys.executable)}:/usr/sbin:/usr/bin:/sbin:/bin",
            "KUBERNETES_SERVICE_HOST": "192.0.2.1",
            "KUBERNETES_SERVICE_PORT": "6443",
        }
        for item in container.get("env", []):
            if "value" in item:
                env[item["name"]] = item["value"]
            else:
                env[item["name"]] = fields[item["valueFrom"]["fieldRef"]["fieldPath"]]
        return env

    def start(self, container: dict[str, Any], log: Path) -> subprocess.Popen[bytes]:
        env = self.env(container)
        argv = [expand(a, env) for a in [*container["command"], *container.get("args", [])]]
        steps = [
            "set -e",
            "mount --make-rprivate /",
            # fresh /run and /opt (nothing of the host's needed there), /etc as an overlay
            # whose changes stay in this mount namespace's /run
            "mount -t tmpfs tmpfs /run",
            "mount -t tmpfs tmpfs /opt",
            "mkdir -p /run/.etc/upper /run/.etc/work",
            "mount -t overlay overlay -o lowerdir=/etc,upperdir=/run/.etc/upper,"
            "workdir=/run/.etc/work /etc",
            f"mkdir -p {SERVICE_ACCOUNT}",
            f"mount --bind {shlex.quote(str(self.account))} {SERVICE_ACCOUNT}",
        ]
        for mount in container.get("volumeMounts", []):
            target = mount["mountPath"].rstrip("/")
            steps.append(f"mkdir -p {shlex.quote(target)}")
            source = self.volumes[mount["name"]]
            steps.append(f"mount --bind {shlex.quote(str(source))} {shlex.quote(target)}")
        netns = self.lab.node(self.node).netns
        steps.append(f"exec nsenter --net={shlex.quote(netns)} {shlex.join(argv)}")
        with open(log, "ab") as out:
            return subprocess.Popen(
                ["unshare", "--mount", "--propagation", "private", "sh", "-c", "\n".join(steps)],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def probe(self, container: dict[str, Any], kind: str) -> int:
        get = container[kind]["httpGet"]
        ports = {p["name"]: p["containerPort"] for p in container.get("ports", [])}
        port = ports.get(get["port"], get["port"])
        address = str(self.lab.node(self.node).ip)  # hostNetwork: the pod IP is the node's

        def ask() -> int:
            conn = http.client.HTTPConnection(address, int(port), timeout=2)
            try:
                conn.request("GET", get["path"])
                return conn.getresponse().status
            except OSError:
                return 0
            finally:
                conn.close()

        status: int = run_in_netns(self.lab.node(self.node).netns, ask)
        return status


def _token_of(token_file: str, user: str) -> str:
    with open(token_file, encoding="utf-8") as handle:
        for row in csv.reader(handle):
            if row and row[1] == user:
                return row[0]
    raise AssertionError(f"no token for {user}")


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    name = "d" + secrets.token_hex(3)
    netns_dir = tmp_path / "netns"
    netns_dir.mkdir()
    running = Lab(name, root=str(tmp_path / "labs"), netns_dir=str(netns_dir))
    try:
        yield running
    finally:
        running.down()
        assert lab_namespaces(name, netns_dir=str(netns_dir)) == []


@pytest.mark.root
@pytest.mark.slow
def test_the_daemonset_runs_on_a_lab_node_as_kubelet_would_run_it(lab: Lab, tmp_path: Path) -> None:
    lab.up(2)
    lab.processes.stop("agent-n2")  # n2's agent is now the manifest's
    node = lab.node("n2")
    with Rtnl.open(node.netns) as rtnl:  # a real node has a default route (flanneld's --iface)
        add_default_route(rtnl, IPv4Address("192.0.2.1"))
    pod = agent_pod()
    kubelet = Kubelet(lab, "n2", pod, tmp_path / "pod")
    (init,) = pod["initContainers"]
    done = kubelet.start(init, tmp_path / "install-cni.log")
    assert done.wait(timeout=120) == 0, (tmp_path / "install-cni.log").read_text()
    (container,) = pod["containers"]
    agent = kubelet.start(container, tmp_path / "agent.log")
    try:
        deadline = time.monotonic() + 60
        while kubelet.probe(container, "readinessProbe") != 200:
            assert agent.poll() is None, (tmp_path / "agent.log").read_text()
            assert time.monotonic() < deadline, (tmp_path / "agent.log").read_text()
            time.sleep(0.2)
        assert kubelet.probe(container, "livenessProbe") == 200
        host = kubelet.host
        subnet_env = (host / "run/flannel/subnet.env").read_text()
        cidr = IPv4Network(next(n.pod_cidr for n in lab.nodes() if n.name == "n2"))
        gateway = f"{cidr.network_address + 1}/{cidr.prefixlen}"
        assert f"FLANNEL_SUBNET={gateway}" in subnet_env, subnet_env
        conflist = json.loads((host / "etc/cni/net.d/10-flannel.conflist").read_text())
        config_map = next(v["configMap"]["name"] for v in pod["volumes"] if "configMap" in v)
        assert conflist == json.loads(find("ConfigMap", config_map)["data"]["cni-conf.json"])
        assert {"flannel", "bridge", "host-local"} <= set(os.listdir(host / "opt/cni/bin"))
        # The cluster sees it: n2's annotations and condition, and n1 programs n2.
        n2 = next(n for n in lab.nodes() if n.name == "n2")
        assert n2.annotations["flannel.alpha.coreos.com/public-ip"] == str(node.ip)
        admin = subprocess.run(
            ["kubectl", "--kubeconfig", lab.kubeconfig, "get", "node", "n2", "-o", "json"],
            capture_output=True, text=True, timeout=60, check=True,
        ).stdout  # fmt: skip
        conditions = json.loads(admin)["status"]["conditions"]
        assert {"type": "NetworkUnavailable", "status": "False"}.items() <= conditions[0].items()
    finally:
        agent.send_signal(signal.SIGTERM)
        agent.wait(timeout=30)
