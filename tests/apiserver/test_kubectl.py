"""kubectl, which no one here wrote, against podnet's API server: the walk-through's
commands and the ones a user reaches for next."""

from __future__ import annotations

import json
import queue
import shutil
import subprocess
import threading

import pytest

from podnet.store import EventRecorder, Nodes
from tests.apiserver.conftest import Cluster

pytestmark = pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")


def kubectl(cluster: Cluster, *args: str, who: str = "admin", check: bool = True) -> str:
    done = subprocess.run(
        ["kubectl", "--kubeconfig", cluster.kubeconfigs[who], *args],
        capture_output=True,
        text=True,
        timeout=60,
    )
    if check:
        assert done.returncode == 0, done.stderr
        assert done.stderr == "", done.stderr
        return done.stdout
    assert done.returncode != 0
    return done.stderr


@pytest.fixture
def lab_like(cluster: Cluster) -> Cluster:
    """Two nodes as the agent registers them, n1's podCIDR set as nodeipam sets it, and
    an event about n1 as nodeipam records it: all through podnet.store, not the API."""
    nodes = Nodes(cluster.store)
    n1 = nodes.register("n1", addresses=["192.0.2.11"])
    nodes.register("n2", addresses=["192.0.2.12"])
    nodes.update(n1.with_pod_cidrs(["10.244.1.0/24"]))
    EventRecorder(cluster.store, "cidrAllocator").record(
        kind="Node", name="n1", uid=n1.uid, type="Normal", reason="CIDRAssignmentFailed",
        message="just an example",
    )  # fmt: skip
    return cluster


def test_get_node_json_pod_cidr(lab_like: Cluster) -> None:
    node = json.loads(kubectl(lab_like, "get", "no", "n1", "-o", "json"))
    assert node["spec"]["podCIDR"] == "10.244.1.0/24"
    assert node["kind"] == "Node" and node["metadata"]["resourceVersion"]
    jsonpath = kubectl(lab_like, "get", "node", "n1", "-o", "jsonpath={.spec.podCIDR}")
    assert jsonpath == "10.244.1.0/24"


def test_get_nodes_wide(lab_like: Cluster) -> None:
    lines = kubectl(lab_like, "get", "nodes", "-o", "wide").splitlines()
    assert lines[0].split()[:6] == ["NAME", "STATUS", "ROLES", "AGE", "VERSION", "INTERNAL-IP"]
    rows = {line.split()[0]: line.split() for line in lines[1:]}
    assert set(rows) == {"n1", "n2"}
    assert rows["n1"][5] == "192.0.2.11" and rows["n2"][5] == "192.0.2.12"


def test_describe_node_shows_its_events(lab_like: Cluster) -> None:
    described = kubectl(lab_like, "describe", "node", "n1")
    assert "Name:               n1" in described
    assert "InternalIP:  192.0.2.11" in described
    assert "PodCIDR:                      10.244.1.0/24" in described
    events = described.split("Events:", 1)[1]
    assert "CIDRAssignmentFailed" in events and "just an example" in events


def test_get_events(lab_like: Cluster) -> None:
    lines = kubectl(lab_like, "get", "events").splitlines()
    assert lines[0].split()[:4] == ["LAST", "SEEN", "TYPE", "REASON"]
    assert "node/n1" in lines[1] and "CIDRAssignmentFailed" in lines[1]


def test_label_and_annotate_node(lab_like: Cluster) -> None:
    assert kubectl(lab_like, "label", "node", "n1", "zone=a") == "node/n1 labeled\n"
    assert kubectl(lab_like, "annotate", "node", "n1", "note=hi") == "node/n1 annotated\n"
    assert kubectl(lab_like, "get", "nodes", "-l", "zone=a", "-o", "name") == "node/n1\n"
    # The store's Node type (the agent's, nodeipam's) sees the annotation, keeps the label.
    nodes = Nodes(lab_like.store)
    assert nodes.require("n1").annotations["note"] == "hi"
    assert kubectl(lab_like, "label", "node", "n1", "zone-") == "node/n1 unlabeled\n"
    assert kubectl(lab_like, "get", "nodes", "-l", "zone", "-o", "name") == ""


def test_get_nodes_watch(lab_like: Cluster) -> None:
    process = subprocess.Popen(
        ["kubectl", "--kubeconfig", lab_like.kubeconfigs["admin"], "get", "nodes", "-w"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()

    def read() -> None:
        for line in process.stdout or []:
            lines.put(line)

    reader = threading.Thread(target=read)
    reader.start()

    def next_line() -> str:
        return lines.get(timeout=30)

    try:
        assert next_line().split()[:2] == ["NAME", "STATUS"]
        assert {next_line().split()[0], next_line().split()[0]} == {"n1", "n2"}
        Nodes(lab_like.store).register("n3", addresses=["192.0.2.13"])
        assert next_line().split()[0] == "n3"
    finally:
        process.terminate()
        process.wait(timeout=10)
        reader.join(timeout=10)
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()


def test_kubectl_shows_the_refusals(lab_like: Cluster) -> None:
    stderr = kubectl(lab_like, "label", "node", "n2", "x=y", who="n1", check=False)
    assert stderr.strip() == (
        'Error from server (Forbidden): nodes "n2" is forbidden: node "n1" is not allowed to '
        'modify node "n2"'
    )
    stderr = kubectl(lab_like, "get", "nodes", who="stranger", check=False)
    assert "Forbidden" in stderr and 'User "alice" cannot list resource "nodes"' in stderr
    stderr = kubectl(lab_like, "get", "node", "nope", check=False)
    assert stderr.strip() == 'Error from server (NotFound): nodes "nope" not found'


def test_configmaps_pods_and_leases(lab_like: Cluster) -> None:
    """`create -f` with --validate=false: podnet serves no OpenAPI document, which kubectl's
    client-side validation needs (the typed generators, e.g. `create configmap`, send
    protobuf, which podnet does not decode: see the README)."""
    manifest = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings"},
                "data": {"mode": "fast"}}  # fmt: skip
    done = subprocess.run(
        ["kubectl", "--kubeconfig", lab_like.kubeconfigs["admin"], "create", "--validate=false",
         "-f", "-"],
        input=json.dumps(manifest), capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0 and done.stdout == "configmap/settings created\n", done.stderr
    data = json.loads(kubectl(lab_like, "get", "cm", "settings", "-o", "json"))["data"]
    assert data == {"mode": "fast"}
    kubectl(lab_like, "delete", "configmap", "settings")
    assert kubectl(lab_like, "get", "cm", "-o", "name") == ""
    assert kubectl(lab_like, "get", "leases", "-n", "kube-node-lease", "-o", "name") == ""
    created = kubectl(
        lab_like, "run", "web", "--image=registry.k8s.io/pause:3.9",
        '--overrides={"spec":{"nodeName":"n1"}}',
    )  # fmt: skip
    assert created == "pod/web created\n"
    lines = kubectl(lab_like, "get", "pods", "-o", "wide").splitlines()
    assert lines[0].split()[:7] == ["NAME", "READY", "STATUS", "RESTARTS", "AGE", "IP", "NODE"]
    assert lines[1].split()[:7] == [
        "web",
        "0/1",
        "Pending",
        "0",
        lines[1].split()[4],
        "<none>",
        "n1",
    ]
    assert kubectl(lab_like, "delete", "pod", "web") == 'pod "web" deleted\n'
