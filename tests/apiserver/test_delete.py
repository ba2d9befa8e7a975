# The client's models make every field Optional.
# mypy: disable-error-code="union-attr,no-untyped-call,arg-type,index"
"""Deletion as kube-apiserver does it: a Pod a node runs is deleted gracefully (it gets
deletionTimestamp and stays until its node deletes it with grace period 0); deletecollection
with selectors; dryRun=All answers without storing."""

from __future__ import annotations

from kubernetes import client, config

from tests.apiserver.conftest import Cluster

CONTAINERS = [{"name": "c", "image": "registry.k8s.io/pause:3.9"}]


def pod(name: str, node: str | None = None, **labels: str) -> dict[str, object]:
    spec: dict[str, object] = {"containers": CONTAINERS}
    if node:
        spec["nodeName"] = node
    return {"metadata": {"name": name, "labels": labels}, "spec": spec}


PODS = "/api/v1/namespaces/default/pods"


def test_a_pod_on_a_node_is_deleted_gracefully(cluster: Cluster) -> None:
    admin, n1, n2 = cluster.client("admin"), cluster.client("n1"), cluster.client("n2")
    created = admin.post(PODS, json=pod("web", "n1")).json()
    answer = admin.delete(f"{PODS}/web")
    assert answer.status_code == 200
    terminating = answer.json()
    assert terminating["kind"] == "Pod"  # pods answer with the object
    assert terminating["metadata"]["deletionGracePeriodSeconds"] == 30
    assert terminating["metadata"]["deletionTimestamp"] > created["metadata"]["creationTimestamp"]
    # still there, Terminating, and the deletion time is the server's to keep
    assert admin.get(f"{PODS}/web").json()["metadata"]["deletionTimestamp"]
    patched = admin.patch(
        f"{PODS}/web",
        json={"metadata": {"deletionTimestamp": None, "labels": {"a": "b"}}},
        headers={"Content-Type": "application/merge-patch+json"},
    ).json()
    assert patched["metadata"]["deletionTimestamp"] == terminating["metadata"]["deletionTimestamp"]
    # a shorter grace period moves it closer, a longer one does not
    sooner = admin.delete(f"{PODS}/web", params={"gracePeriodSeconds": "5"}).json()
    assert sooner["metadata"]["deletionGracePeriodSeconds"] == 5
    later = admin.delete(f"{PODS}/web", params={"gracePeriodSeconds": "60"}).json()
    assert later["metadata"]["deletionGracePeriodSeconds"] == 5
    # Only its own node confirms, with grace 0 and the pod's uid (kubelet's delete).
    options = {"gracePeriodSeconds": 0, "preconditions": {"uid": created["metadata"]["uid"]}}
    assert n2.request("DELETE", f"{PODS}/web", json=options).status_code == 403
    assert n1.request("DELETE", f"{PODS}/web", json=options).status_code == 200
    assert admin.get(f"{PODS}/web").status_code == 404


def test_pods_nothing_runs_go_at_once(cluster: Cluster) -> None:
    admin = cluster.client("admin")
    admin.post(PODS, json=pod("pending"))  # not bound to a node
    assert admin.delete(f"{PODS}/pending").status_code == 200
    assert admin.get(f"{PODS}/pending").status_code == 404
    admin.post(PODS, json=pod("forced", "n1"))
    assert admin.delete(f"{PODS}/forced", params={"gracePeriodSeconds": "0"}).status_code == 200
    assert admin.get(f"{PODS}/forced").status_code == 404
    admin.post(PODS, json=pod("done", "n1"))
    cluster.client("n1").patch(
        f"{PODS}/done/status",
        json={"status": {"phase": "Succeeded"}},
        headers={"Content-Type": "application/merge-patch+json"},
    ).raise_for_status()
    admin.delete(f"{PODS}/done").raise_for_status()
    assert admin.get(f"{PODS}/done").status_code == 404


def test_delete_collection_with_a_selector(cluster: Cluster) -> None:
    api = client.CoreV1Api(config.new_client_from_config(cluster.kubeconfigs["admin"]))
    for name, tier in (("a", "web"), ("b", "web"), ("c", "db")):
        api.create_namespaced_config_map(
            "default",
            client.V1ConfigMap(metadata=client.V1ObjectMeta(name=name, labels={"tier": tier})),
        )
    api.delete_collection_namespaced_config_map("default", label_selector="tier=web")
    assert [cm.metadata.name for cm in api.list_namespaced_config_map("default").items] == ["c"]
    # the nodes may not delete collections (NodeRestriction could not apply per pod)
    n1 = cluster.client("n1")
    assert n1.delete(PODS).status_code == 403


def test_dry_run_stores_nothing(cluster: Cluster) -> None:
    admin = cluster.client("admin")
    dry = {"dryRun": "All"}
    answer = admin.post(PODS, json=pod("web", "n1"), params=dry)
    assert answer.status_code == 201 and answer.json()["metadata"]["name"] == "web"
    assert admin.get(f"{PODS}/web").status_code == 404
    admin.post(PODS, json=pod("web", "n1"))
    assert admin.post(PODS, json=pod("web", "n1"), params=dry).status_code == 409
    merge = {"Content-Type": "application/merge-patch+json"}
    changed = admin.patch(f"{PODS}/web", json={"metadata": {"labels": {"x": "y"}}},
                          headers=merge, params=dry).json()  # fmt: skip
    assert changed["metadata"]["labels"] == {"x": "y"}
    assert not admin.get(f"{PODS}/web").json()["metadata"].get("labels")
    bad = admin.patch(f"{PODS}/web", json={"spec": {"nodeName": "n2"}}, headers=merge, params=dry)
    assert bad.status_code == 422  # validated as a real write would be
    assert admin.delete(f"{PODS}/web", params={"dryRun": "All", "gracePeriodSeconds": "0"}).json()
    assert admin.get(f"{PODS}/web").status_code == 200
    assert admin.request("DELETE", PODS, params=dry).json()["items"][0]["metadata"]["name"] == "web"
    assert admin.get(f"{PODS}/web").status_code == 200
    assert admin.post(PODS, json=pod("x"), params={"dryRun": "Some"}).status_code == 400
