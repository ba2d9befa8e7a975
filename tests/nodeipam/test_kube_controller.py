# The official client's models make every field Optional and its config module is untyped.
# mypy: disable-error-code="union-attr,no-untyped-call,arg-type,return-value"
"""The node IPAM controller through the Kubernetes API (podnet's API server over a real
store), checked with clients no one here wrote: kubectl and the official Python client."""

from __future__ import annotations

import ipaddress
import json
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client as k8s
from kubernetes import config as k8s_config

from podnet.nodeipam import KubeController, NodeIPAMConfig, kube_client, parse_config
from podnet.store import Nodes, open_store
from tests.apiserver.conftest import Cluster, start_cluster

WAIT = 30.0


def wait_for(what: str, check: Callable[[], Any], timeout: float = WAIT) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(0.05)


class Running:
    """A KubeController in a thread, as the controller manager's identity."""

    def __init__(self, cluster: Cluster, config: NodeIPAMConfig) -> None:
        self.controller = KubeController(kube_client(cluster.kubeconfigs["controller"]), config)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.controller.run, args=(self.stop,))
        self.thread.start()
        assert self.controller.synced.wait(WAIT)

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=WAIT)
        assert not self.thread.is_alive()
        self.controller.client.close()  # and the watch's connection with it


@pytest.fixture
def api(cluster: Cluster) -> Iterator[k8s.CoreV1Api]:
    """The official client, as the admin."""
    with k8s_config.new_client_from_config(cluster.kubeconfigs["admin"]) as api_client:
        yield k8s.CoreV1Api(api_client)


@pytest.fixture
def start(cluster: Cluster) -> Iterator[Callable[[str], Running]]:
    running: list[Running] = []

    def starter(cluster_cidr: str, **masks: int) -> Running:
        config = parse_config(cluster_cidr, **masks)
        running.append(Running(cluster, config))
        return running[-1]

    yield starter
    for one in running:
        one.close()


def register(api: k8s.CoreV1Api, name: str, pod_cidr: str | None = None) -> None:
    body: dict[str, Any] = {"metadata": {"name": name}}
    if pod_cidr:
        body["spec"] = {"podCIDR": pod_cidr, "podCIDRs": [pod_cidr]}
    api.create_node(body)


def assigned(api: k8s.CoreV1Api, name: str) -> tuple[str, list[str]] | None:
    """(podCIDR, podCIDRs) once the node has them, else None."""
    cidr, cidrs = pod_cidrs(api, name)
    return (cidr, cidrs) if cidr else None


def pod_cidrs(api: k8s.CoreV1Api, name: str) -> tuple[str | None, list[str]]:
    spec = api.read_node(name).spec
    if spec is None:
        return None, []
    return spec.pod_cidr, list(spec.pod_cidrs or [])


def test_nodes_get_pod_cidr_and_pod_cidrs(
    start: Callable[..., Running], api: k8s.CoreV1Api
) -> None:
    register(api, "taken", "10.244.0.0/24")  # set before the controller starts: kept
    start("10.244.0.0/16", node_cidr_mask_size=24)
    for name in ("n1", "n2", "n3"):
        register(api, name)
    got = {}
    for name in ("n1", "n2", "n3"):
        cidr, cidrs = wait_for(f"{name}'s podCIDR", lambda n=name: assigned(api, n))  # type: ignore[misc]
        assert cidrs == [cidr]  # both fields, as PatchNodeCIDRs writes them
        got[name] = cidr
    assert sorted(got.values()) == ["10.244.1.0/24", "10.244.2.0/24", "10.244.3.0/24"]
    assert pod_cidrs(api, "taken") == ("10.244.0.0/24", ["10.244.0.0/24"])


def test_dual_stack_pod_cidrs(start: Callable[..., Running], api: k8s.CoreV1Api) -> None:
    start("10.244.0.0/16,fd00:10:244::/56")
    register(api, "n1")
    cidr, cidrs = wait_for("n1's podCIDRs", lambda: assigned(api, "n1"))
    assert cidr == "10.244.0.0/24"
    assert cidrs == ["10.244.0.0/24", "fd00:10:244::/64"]


def events_for(api: k8s.CoreV1Api, node: str, reason: str) -> list[Any]:
    listed = api.list_namespaced_event("default").items
    return [e for e in listed if e.involved_object.name == node and e.reason == reason]


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
def test_full_range_records_cidr_not_available_and_kubectl_delete_frees(
    cluster: Cluster, start: Callable[..., Running], api: k8s.CoreV1Api
) -> None:
    """Two /24 blocks in a /23: a third node waits with KCM's event; `kubectl delete
    node` of a holder hands its block to the waiting node."""
    running = start("10.244.0.0/23", node_cidr_mask_size=24)
    register(api, "n1")
    register(api, "n2")
    wait_for("n1, n2 assigned", lambda: pod_cidrs(api, "n1")[0] and pod_cidrs(api, "n2")[0])
    register(api, "n3")
    events = wait_for("CIDRNotAvailable", lambda: events_for(api, "n3", "CIDRNotAvailable"))
    event = events[0]
    n3 = api.read_node("n3")
    assert event.type == "Normal"  # RecordNodeStatusChange's type
    assert event.message == "Node n3 status is now: CIDRNotAvailable"
    assert event.source.component == "cidrAllocator"
    assert event.metadata.namespace == "default"
    assert event.metadata.name.startswith("n3.")
    ref = event.involved_object
    assert (ref.api_version, ref.kind, ref.name, ref.uid) == ("v1", "Node", "n3", n3.metadata.uid)
    assert running.controller.waiting == ["n3"]
    assert pod_cidrs(api, "n3") == (None, [])

    freed, _ = pod_cidrs(api, "n2")
    done = subprocess.run(
        ["kubectl", "--kubeconfig", cluster.kubeconfigs["admin"], "delete", "node", "n2"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert wait_for("n3 assigned", lambda: pod_cidrs(api, "n3")[0]) == freed
    assert len(events_for(api, "n3", "CIDRNotAvailable")) == 1  # one event per wait


def test_relists_after_the_api_server_comes_back(tmp_path: Path) -> None:
    """While the API server is down a node is deleted and another registered (straight in
    the store); once it is back, the controller relists: the deleted node's block is free
    again and the new node gets it."""
    store = open_store(f"sqlite://{tmp_path}/cluster.db")
    first = start_cluster(store, tmp_path / "a")
    admin = first.client("admin")
    port = int(first.url.rsplit(":", 1)[1])
    running = Running(first, parse_config("10.244.0.0/23", node_cidr_mask_size=24))
    second: Cluster | None = None
    try:
        for name in ("n1", "n2"):
            assert admin.post("/api/v1/nodes", json={"metadata": {"name": name}}).status_code == 201
        nodes = Nodes(store)
        wait_for("n1, n2 assigned", lambda: all(nodes.get(n).pod_cidr for n in ("n1", "n2")))
        freed = nodes.get("n1").pod_cidr
        admin.close()
        first.server.close()
        nodes.delete("n1")
        nodes.register("n3", addresses=["192.0.2.3"])
        second = restart(store, first, tmp_path, port)
        assert wait_for("n3 assigned", lambda: nodes.get("n3").pod_cidr) == freed
        assert running.controller.counters.resyncs >= 2
    finally:
        running.close()
        if second is not None:
            second.server.close()
        store.close()


def restart(store: Any, before: Cluster, tmp_path: Path, port: int) -> Cluster:
    """The same API server (tokens, certificates, port) started again over `store`."""
    from podnet.apiserver import APIServer, Tokens, ensure_serving_certs

    pki = ensure_serving_certs(str(tmp_path / "a" / "pki"), ["127.0.0.1"])
    server = APIServer(store, tokens=Tokens.load(str(tmp_path / "a" / "tokens.csv")), serving=pki)
    deadline = time.monotonic() + WAIT
    while True:
        try:
            server.listen("127.0.0.1", port)
            break
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
    return Cluster(server, store, before.url, before.ca, before.tokens, before.kubeconfigs)


def test_no_block_twice_under_a_burst(start: Callable[..., Running], api: k8s.CoreV1Api) -> None:
    """200 nodes registered from four threads at once: every one gets a distinct block."""
    start("10.244.0.0/16", node_cidr_mask_size=24)
    names = [f"burst-{i:03d}" for i in range(200)]

    def writer(chunk: list[str]) -> None:
        for name in chunk:
            register(api, name)

    threads = [threading.Thread(target=writer, args=(names[i::4],)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    def all_assigned() -> dict[str, str] | None:
        cidrs = {n.metadata.name: n.spec and n.spec.pod_cidr for n in api.list_node().items}
        return cidrs if all(cidrs.values()) and len(cidrs) == len(names) else None

    cidrs = wait_for("every node assigned", all_assigned, timeout=120)
    assert len(set(cidrs.values())) == len(names)
    for cidr in cidrs.values():
        assert ipaddress.ip_network(cidr).subnet_of(ipaddress.ip_network("10.244.0.0/16"))
    assert json.dumps(sorted(cidrs.values()))  # printable for a failing diff
