"""The agent with `--kube-subnet-mgr`'s node source: nodes through podnet's API server
(lightkube as the client), and podnet interoperating with flanneld's node annotations."""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from podnet.agent import (
    AgentLoop,
    AgentSettings,
    InterfaceOptions,
    KubeNodeSource,
    NodeSource,
    RtnlTables,
)
from podnet.agent._daemon import stored_public_ips
from podnet.agent._kube_client import kube_client
from podnet.agent._kube_source import NETWORK_UP_MESSAGE, NETWORK_UP_REASON, WatchEnded
from podnet.kube import CredentialsError
from podnet.netlink import Rtnl
from podnet.store import open_store
from tests.agent.cluster import VXLAN, Cluster, pod_cidr, vxlan_triples
from tests.agent.test_loop import eventually
from tests.apiserver.conftest import Cluster as API
from tests.apiserver.conftest import start_cluster

STRATEGIC = {"Content-Type": "application/strategic-merge-patch+json"}
# What flanneld v0.28 writes on its node (pkg/subnet/kube AcquireLease): a strategic merge
# patch of the annotations, sent to nodes/status. Its VTEP MAC is its own, not podnet's.
FLANNELD_MAC = "6e:3c:5a:10:20:30"
FLANNELD_BACKEND_DATA = '{"VNI":1,"VtepMAC":"6e:3c:5a:10:20:30"}'  # Go's json.Marshal


def flanneld_patch(public_ip: str) -> dict[str, Any]:
    return {
        "metadata": {
            "annotations": {
                "flannel.alpha.coreos.com/backend-data": FLANNELD_BACKEND_DATA,
                "flannel.alpha.coreos.com/backend-type": "vxlan",
                "flannel.alpha.coreos.com/kube-subnet-manager": "true",
                "flannel.alpha.coreos.com/public-ip": public_ip,
            }
        }
    }


@pytest.fixture
def api(tmp_path: Path) -> Iterator[API]:
    store = open_store(f"sqlite://{tmp_path}/cluster.db")
    running = start_cluster(store, tmp_path, watch_window=20)
    try:
        yield running
    finally:
        for client in running.clients:
            client.close()
        running.server.close()
        store.close()


def register(api: API, name: str, cidr: str | None = None) -> None:
    """The node as its kubelet registers it; the podCIDR as nodeipam sets it."""
    admin = api.client()
    body: dict[str, Any] = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name}}
    assert admin.post("/api/v1/nodes", json=body).status_code == 201
    if cidr is not None:
        set_pod_cidr(api, name, cidr)


def set_pod_cidr(api: API, name: str, cidr: str) -> None:
    spec = {"spec": {"podCIDR": cidr, "podCIDRs": [cidr]}}
    reply = api.client("controller").patch(f"/api/v1/nodes/{name}", json=spec, headers=STRATEGIC)
    assert reply.status_code == 200, reply.text


class KubeAgent:
    """One AgentLoop thread on a lab node, its nodes from the API server as node `who`."""

    def __init__(self, api: API, cluster: Cluster, name: str) -> None:
        node = next(n for n in cluster.nodes if n.name == name)
        self.source = KubeNodeSource(kube_client(api.kubeconfigs[name]))
        checked: NodeSource = self.source
        self.loop = AgentLoop(
            checked,
            VXLAN,
            AgentSettings(
                node=name,
                underlay=node.underlay_if,
                subnet_file=os.path.join(cluster.state_dir, name, "subnet.env"),
                netns=node.netns,
                resync=0.5,
                poll=0.05,
            ),
        )
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.loop.run, args=(self.stop,), daemon=True)
        self.thread.start()

    def kernel(self) -> Any:
        network = self.loop.network
        assert network is not None
        (device,) = network.backend.owned_devices
        with Rtnl.open(network.settings.netns) as rtnl:
            return device, RtnlTables(rtnl).read((device,))

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=10)
        self.source.close()
        assert not self.thread.is_alive()


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    netns_dir = tmp_path / "netns"
    netns_dir.mkdir()
    lab = "k" + uuid.uuid4().hex[:10]
    built = Cluster.build(lab, str(netns_dir), str(tmp_path / "state"), 2)
    try:
        yield built
    finally:
        built.destroy()


@pytest.fixture
def agents() -> Iterator[Callable[[API, Cluster, str], KubeAgent]]:
    started: list[KubeAgent] = []

    def start(api: API, cluster: Cluster, name: str) -> KubeAgent:
        agent = KubeAgent(api, cluster, name)
        started.append(agent)
        return agent

    yield start
    for agent in started:
        agent.close()


@pytest.mark.root
def test_a_node_written_as_flanneld_writes_it_is_programmed_and_podnet_writes_as_flanneld(
    api: API, cluster: Cluster, agents: Callable[[API, Cluster, str], KubeAgent]
) -> None:
    n1, n2 = cluster.nodes
    register(api, "n1", str(pod_cidr(n1)))
    agent = agents(api, cluster, "n1")
    eventually(agent.loop.ready.is_set, within=15)

    # n2 runs flanneld: its kubelet registered it, nodeipam gave it a podCIDR, flanneld
    # patched its annotations through nodes/status with its own identity.
    register(api, "n2", str(pod_cidr(n2)))
    patch = flanneld_patch(str(n2.ip))
    reply = api.client("n2").patch("/api/v1/nodes/n2/status", json=patch, headers=STRATEGIC)
    assert reply.status_code == 200, reply.text

    def programmed() -> bool:
        device, entries = agent.kernel()
        lease = agent.loop.network.watcher.leases  # type: ignore[union-attr]
        return bool(lease) and entries == vxlan_triples(device, lease)

    eventually(programmed, within=5)
    device, entries = agent.kernel()
    (route,) = entries.routes
    (neighbour,) = entries.neighbours
    (fdb,) = entries.fdb
    assert (str(route.dst), str(route.gateway), route.onlink) == (
        "10.244.2.0/24",
        "10.244.2.0",
        True,
    )
    assert (str(neighbour.ip), neighbour.mac) == ("10.244.2.0", FLANNELD_MAC)
    assert (fdb.mac, fdb.dst) == (FLANNELD_MAC, n2.ip)

    # What podnet wrote on n1 is what flanneld reads: the same keys, values and JSON.
    stored = api.client().get("/api/v1/nodes/n1").json()
    annotations = stored["metadata"]["annotations"]
    data = json.loads(annotations["flannel.alpha.coreos.com/backend-data"])
    assert annotations["flannel.alpha.coreos.com/backend-data"] == json.dumps(
        {"VNI": 1, "VtepMAC": data["VtepMAC"]}, separators=(",", ":")
    )
    assert annotations["flannel.alpha.coreos.com/backend-type"] == "vxlan"
    assert annotations["flannel.alpha.coreos.com/kube-subnet-manager"] == "true"
    assert annotations["flannel.alpha.coreos.com/public-ip"] == str(n1.ip)
    (condition,) = stored["status"]["conditions"]
    assert condition["type"] == "NetworkUnavailable" and condition["status"] == "False"
    assert (condition["reason"], condition["message"]) == (NETWORK_UP_REASON, NETWORK_UP_MESSAGE)
    assert condition["lastTransitionTime"].endswith("Z")

    # flanneld leaves (kubectl delete node n2): podnet drops its entries.
    assert api.client().delete("/api/v1/nodes/n2").status_code == 200
    eventually(lambda: agent.kernel()[1] == vxlan_triples(device, []), within=1.0)


@pytest.mark.root
def test_the_agent_waits_on_a_watch_for_its_podcidr(
    api: API,
    cluster: Cluster,
    agents: Callable[[API, Cluster, str], KubeAgent],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level("INFO", logger="podnet.agent")
    register(api, "n1")
    agent = agents(api, cluster, "n1")
    eventually(lambda: "node n1 has no podCIDR yet" in caplog.text, within=10)
    assert not agent.loop.ready.is_set()
    set_pod_cidr(api, "n1", str(pod_cidr(cluster.nodes[0])))
    eventually(agent.loop.ready.is_set, within=10)


def label(api: API, name: str, value: str) -> None:
    reply = api.client().patch(
        f"/api/v1/nodes/{name}", json={"metadata": {"labels": {"v": value}}}, headers=STRATEGIC
    )
    assert reply.status_code == 200, reply.text


def test_a_watch_from_a_version_the_server_no_longer_keeps_ends_with_410(api: API) -> None:
    source = KubeNodeSource(kube_client(api.kubeconfigs["n1"]))
    try:
        register(api, "n1")
        _, old = source.list_nodes()
        for i in range(40):  # more changes than the server's watch window keeps
            label(api, "n1", str(i))
        watch = source.watch_nodes(old)
        with pytest.raises(WatchEnded, match="410"):
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                watch.get(timeout=0.5)
        watch.close()
        # What the loop does next: list again, and watch from the fresh list's version.
        _, fresh = source.list_nodes()
        watch = source.watch_nodes(fresh)
        set_pod_cidr(api, "n1", "10.244.9.0/24")
        changes: list[Any] = []
        deadline = time.monotonic() + 10
        while not changes and time.monotonic() < deadline:
            changes = list(watch.get(timeout=0.5))
        assert [c.node.pod_cidrs for c in changes] == [("10.244.9.0/24",)]
        watch.close()
    finally:
        source.close()


def test_a_watch_asks_for_bookmarks_and_follows_them(api: API) -> None:
    source = KubeNodeSource(kube_client(api.kubeconfigs["n1"]))
    try:
        register(api, "n1")
        _, version = source.list_nodes()
        watch = source.watch_nodes(version)
        api.client().post("/api/v1/namespaces", json={"metadata": {"name": "other"}})
        # No node changed; the server's bookmark (every 5 s of quiet) moves the version.
        deadline = time.monotonic() + 15
        while watch.version == version and time.monotonic() < deadline:
            assert watch.get(timeout=0.5) == []
        assert int(watch.version) > int(version)
        watch.close()
    finally:
        source.close()


def test_credentials_kubeconfig_then_in_cluster_then_a_clear_error(
    api: API, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.delenv("KUBERNETES_SERVICE_PORT", raising=False)
    with pytest.raises(CredentialsError, match="pass --kubeconfig, or run in a pod"):
        kube_client(None, service_account=str(tmp_path / "none"))
    with pytest.raises(CredentialsError, match="does not exist"):
        kube_client(str(tmp_path / "missing.kubeconfig"))

    # In-cluster: the service account's token, CA and namespace, the API server from env.
    account = tmp_path / "serviceaccount"
    account.mkdir()
    (account / "token").write_text(api.tokens["n1"])
    (account / "ca.crt").write_text(Path(api.ca).read_text())
    (account / "namespace").write_text("kube-podnet")
    host, port = httpx.URL(api.url).host, httpx.URL(api.url).port
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", host)
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", str(port))
    register(api, "n7")
    source = KubeNodeSource(kube_client(None, service_account=str(account)))
    try:
        nodes, _ = source.list_nodes()
        assert [n.name for n in nodes] == ["n7"]
    finally:
        source.close()
    with pytest.raises(CredentialsError, match="in-cluster credentials are not usable"):
        kube_client(None, service_account=str(tmp_path / "none"))


def annotate(api: API, name: str, annotations: dict[str, str]) -> None:
    """An administrator's `kubectl annotate node`."""
    body = {"metadata": {"annotations": annotations}}
    reply = api.client().patch(f"/api/v1/nodes/{name}", json=body, headers=STRATEGIC)
    assert reply.status_code == 200, reply.text


def test_public_ip_overwrite_is_published_instead(api: API) -> None:
    register(api, "n1")
    annotate(api, "n1", {"flannel.alpha.coreos.com/public-ip-overwrite": "203.0.113.5"})
    source = KubeNodeSource(kube_client(api.kubeconfigs["n1"]))
    try:
        source.annotate_node(
            "n1",
            {
                "flannel.alpha.coreos.com/kube-subnet-manager": "true",
                "flannel.alpha.coreos.com/public-ip": "192.0.2.10",
            },
        )
    finally:
        source.close()
    stored = api.client().get("/api/v1/nodes/n1").json()["metadata"]["annotations"]
    assert stored["flannel.alpha.coreos.com/public-ip"] == "203.0.113.5"
    assert stored["flannel.alpha.coreos.com/kube-subnet-manager"] == "true"


def test_node_public_ip_annotations_win_over_the_flags(api: API) -> None:
    register(api, "n1")
    annotate(api, "n1", {"flannel.alpha.coreos.com/node-public-ip": "192.0.2.138"})
    source = KubeNodeSource(kube_client(api.kubeconfigs["n1"]))
    flags = InterfaceOptions(ifaces=("eth0",), public_ip="192.0.2.10", public_ipv6="fd00::10")
    try:
        stored = stored_public_ips(source, "n1", flags)
        assert stored == InterfaceOptions(
            ifaces=("eth0",), public_ip="192.0.2.138", public_ipv6="fd00::10"
        )
        assert stored_public_ips(source, "n9", flags) == flags  # no such node: the flags
    finally:
        source.close()
