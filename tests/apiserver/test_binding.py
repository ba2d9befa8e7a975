# The client's models make every field Optional.
# mypy: disable-error-code="union-attr,no-untyped-call,arg-type,index"
"""pods/binding, what kube-scheduler writes: the pod gets spec.nodeName once and the
condition PodScheduled; a second binding, a binding of a pod being deleted, a bad target
and identities other than the scheduler's are refused as kube-apiserver refuses them."""

from __future__ import annotations

import json
from typing import Any, cast

from kubernetes import client, config

from tests.apiserver.conftest import Cluster

POD = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"name": "web"},
    "spec": {"containers": [{"name": "web", "image": "registry.k8s.io/pause:3.9"}]},
}


def binding(node: str, **meta: str) -> dict[str, object]:
    return {
        "apiVersion": "v1",
        "kind": "Binding",
        "metadata": {"name": "web", **meta},
        "target": {"apiVersion": "v1", "kind": "Node", "name": node},
    }


def test_the_scheduler_binds_a_pod_once(cluster: Cluster) -> None:
    admin, scheduler = cluster.client("admin"), cluster.client("scheduler")
    created = admin.post("/api/v1/namespaces/default/pods", json=POD).json()
    url = "/api/v1/namespaces/default/pods/web/binding"
    answer = scheduler.post(url, json=binding("n1", uid=created["metadata"]["uid"]))
    assert answer.status_code == 201, answer.text
    assert answer.json()["status"] == "Success"
    pod = admin.get("/api/v1/namespaces/default/pods/web").json()
    assert pod["spec"]["nodeName"] == "n1"
    assert [(c["type"], c["status"]) for c in pod["status"]["conditions"]] == [
        ("PodScheduled", "True")
    ]
    again = scheduler.post(url, json=binding("n2"))
    assert again.status_code == 409
    assert again.json()["message"] == (
        'Operation cannot be fulfilled on pods/binding "web": pod web is already assigned '
        'to node "n1"'
    )


def test_bad_bindings_are_refused(cluster: Cluster) -> None:
    admin, scheduler = cluster.client("admin"), cluster.client("scheduler")
    admin.post("/api/v1/namespaces/default/pods", json=POD)
    url = "/api/v1/namespaces/default/pods/web/binding"
    no_target = scheduler.post(url, json={"kind": "Binding", "metadata": {"name": "web"}})
    assert no_target.status_code == 422
    assert no_target.json()["details"]["causes"][0]["field"] == "target.name"
    other_name = scheduler.post(url, json={**binding("n1"), "metadata": {"name": "db"}})
    assert other_name.status_code == 400
    assert scheduler.post(url, json=binding("n1", uid="not-its-uid")).status_code == 409
    missing = scheduler.post(
        "/api/v1/namespaces/default/pods/db/binding", json={**binding("n1"), "metadata": {}}
    )
    assert missing.status_code == 404
    assert scheduler.get(url).status_code == 405
    assert scheduler.post("/api/v1/nodes/n1/binding", json=binding("n1")).status_code == 404
    assert admin.get("/api/v1/namespaces/default/pods/web").json()["spec"].get("nodeName") is None


def test_only_the_scheduler_and_admins_bind(cluster: Cluster) -> None:
    cluster.client("admin").post("/api/v1/namespaces/default/pods", json=POD)
    url = "/api/v1/namespaces/default/pods/web/binding"
    node = cluster.client("n1").post(url, json=binding("n1"))
    assert node.status_code == 403
    assert 'cannot create resource "pods/binding"' in node.json()["message"]
    assert cluster.client("stranger").post(url, json=binding("n1")).status_code == 403
    # the scheduler writes no spec and creates no pods of its own
    scheduler = cluster.client("scheduler")
    assert scheduler.post("/api/v1/namespaces/default/pods", json=POD).status_code == 403
    patch = scheduler.patch(
        "/api/v1/namespaces/default/pods/web",
        content=json.dumps({"spec": {"nodeName": "n1"}}),
        headers={"Content-Type": "application/merge-patch+json"},
    )
    assert patch.status_code == 403


def test_the_official_client_binds(cluster: Cluster) -> None:
    api = client.CoreV1Api(config.new_client_from_config(cluster.kubeconfigs["scheduler"]))
    cluster.client("admin").post("/api/v1/namespaces/default/pods", json=POD)
    body = client.V1Binding(
        metadata=client.V1ObjectMeta(name="web"),
        target=client.V1ObjectReference(kind="Node", name="n2"),
    )
    # The client cannot decode the Status kube-apiserver answers into a V1Binding (a known
    # limitation of the generated client), so the raw answer is read, as schedulers do.
    answer = api.create_namespaced_pod_binding("web", "default", body, _preload_content=False)
    assert cast(Any, answer).status == 201
    assert api.read_namespaced_pod("web", "default").spec.node_name == "n2"
    discovered = {r.name: r for r in api.get_api_resources().resources}
    assert discovered["pods/binding"].kind == "Binding"
    assert discovered["pods/binding"].verbs == ["create"]
