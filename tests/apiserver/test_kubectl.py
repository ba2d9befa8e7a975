"""kubectl, which no one here wrote, against podnet's API server: the walk-through's
commands and the ones a user reaches for next."""

from __future__ import annotations

import json
import queue
import shutil
import subprocess
import threading
from typing import Any

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
    """`create -f` with --validate=false still works (no validation at all)."""
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
    # Bound to n1, whose kubelet would stop it: deleted gracefully, it is Terminating
    # until then; --force with a grace period of 0 removes it at once.
    assert kubectl(lab_like, "delete", "pod", "web", "--wait=false") == 'pod "web" deleted\n'
    assert kubectl(lab_like, "get", "pods").splitlines()[1].split()[2] == "Terminating"
    forced = subprocess.run(
        ["kubectl", "--kubeconfig", lab_like.kubeconfigs["admin"], "delete", "pod", "web",
         "--grace-period=0", "--force"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert forced.returncode == 0 and "force deleted" in forced.stdout, forced.stderr
    assert kubectl(lab_like, "get", "pods", "-o", "name") == ""


def test_create_and_apply_without_validate_false(cluster: Cluster, tmp_path: Any) -> None:
    """The OpenAPI documents let kubectl validate on the server (fieldValidation=Strict);
    client-side apply keeps the last-applied annotation and patches (strategic merge)."""
    manifest = tmp_path / "pod.yaml"
    container = {"name": "web", "image": "registry.k8s.io/pause:3.9"}
    pod: dict[str, Any] = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web"},
                           "spec": {"containers": [container]}}  # fmt: skip
    manifest.write_text(json.dumps(pod))
    assert kubectl(cluster, "create", "-f", str(manifest)) == "pod/web created\n"
    pod["metadata"]["labels"] = {"app": "web"}
    manifest.write_text(json.dumps(pod))
    # Created without `apply`: kubectl warns that the annotation is missing, and patches.
    applied = subprocess.run(
        ["kubectl", "--kubeconfig", cluster.kubeconfigs["admin"], "apply", "-f", str(manifest)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert applied.returncode == 0 and applied.stdout == "pod/web configured\n", applied.stderr
    assert "missing the kubectl.kubernetes.io/last-applied-configuration" in applied.stderr
    stored = json.loads(kubectl(cluster, "get", "pod", "web", "-o", "json"))
    assert stored["metadata"]["labels"] == {"app": "web"}
    last = json.loads(
        stored["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"]
    )
    assert last["metadata"]["labels"] == {"app": "web"}
    del pod["metadata"]["labels"]  # apply removes what the manifest no longer has
    manifest.write_text(json.dumps(pod))
    assert kubectl(cluster, "apply", "-f", str(manifest)) == "pod/web configured\n"
    assert (
        "labels" not in json.loads(kubectl(cluster, "get", "pod", "web", "-o", "json"))["metadata"]
    )
    cm = tmp_path / "cm.yaml"
    cm.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: fresh\ndata:\n  a: b\n")
    assert kubectl(cluster, "apply", "-f", str(cm)) == "configmap/fresh created\n"


def test_create_configmap_and_namespace_send_protobuf(cluster: Cluster) -> None:
    """kubectl's typed generators POST protobuf; the server reads ConfigMaps and
    Namespaces in it."""
    out = kubectl(cluster, "create", "configmap", "settings", "--from-literal=mode=fast",
                  "--from-literal=level=3")  # fmt: skip
    assert out == "configmap/settings created\n"
    data = json.loads(kubectl(cluster, "get", "cm", "settings", "-o", "json"))["data"]
    assert data == {"mode": "fast", "level": "3"}
    assert kubectl(cluster, "create", "namespace", "team-a") == "namespace/team-a created\n"
    assert "team-a" in kubectl(cluster, "get", "ns", "-o", "name")
    assert kubectl(cluster, "create", "configmap", "there", "-n", "team-a") == (
        "configmap/there created\n"
    )


def test_server_side_dry_runs(cluster: Cluster) -> None:
    out = kubectl(cluster, "create", "configmap", "maybe", "--from-literal=a=b", "--dry-run=server")
    assert out == "configmap/maybe created (server dry run)\n"
    assert kubectl(cluster, "get", "cm", "-o", "name") == ""
    kubectl(cluster, "create", "configmap", "real", "--from-literal=a=b")
    assert "(server dry run)" in kubectl(cluster, "delete", "cm", "real", "--dry-run=server")
    assert kubectl(cluster, "get", "cm", "-o", "name") == "configmap/real\n"
    kubectl(cluster, "label", "cm", "real", "x=y", "--dry-run=server")
    assert (
        "labels" not in json.loads(kubectl(cluster, "get", "cm", "real", "-o", "json"))["metadata"]
    )
