"""The API server's wire contract, spoken plainly over HTTPS: Status errors, resource
versions, lists, patches, subresources and watch streams, on sqlite and etcd."""

from __future__ import annotations

import json
import socket
import ssl
import threading
import time
from typing import Any

import httpx
import pytest

from podnet.store import Nodes
from tests.apiserver.conftest import Cluster

NODE = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1"}}


def node(name: str, **labels: str) -> dict[str, Any]:
    body: dict[str, Any] = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name}}
    if labels:
        body["metadata"]["labels"] = labels
    return body


def pod(name: str, node_name: str = "") -> dict[str, Any]:
    spec: dict[str, Any] = {"containers": [{"name": "c", "image": "registry.k8s.io/pause:3.9"}]}
    if node_name:
        spec["nodeName"] = node_name
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec}


def status_of(response: httpx.Response) -> dict[str, Any]:
    body: dict[str, Any] = response.json()
    assert body["kind"] == "Status" and body["status"] == "Failure"
    assert body["code"] == response.status_code
    return body


def test_public_endpoints_need_no_token(cluster: Cluster) -> None:
    anonymous = cluster.client(None)
    assert anonymous.get("/healthz").text == "ok"
    assert anonymous.get("/version").json()["major"] == "1"


@pytest.mark.parametrize("header", [None, "Bearer wrong", "Basic abc", "Bearer"])
def test_no_or_unknown_token_is_401(cluster: Cluster, header: str | None) -> None:
    anonymous = cluster.client(None)
    headers = {"Authorization": header} if header else {}
    for path in ("/api", "/api/v1/nodes", "/api/v1/namespaces/default/pods"):
        response = anonymous.get(path, headers=headers)
        assert response.status_code == 401
        assert status_of(response)["reason"] == "Unauthorized"


def test_only_tls_1_2_or_newer(cluster: Cluster) -> None:
    assert cluster.server.context.minimum_version == ssl.TLSVersion.TLSv1_2
    host, port = cluster.url.removeprefix("https://").rsplit(":", 1)
    context = ssl.create_default_context(cafile=cluster.ca)
    with socket.create_connection((host, int(port)), timeout=10) as raw:
        with context.wrap_socket(raw, server_hostname=host) as tls:
            assert tls.version() in ("TLSv1.2", "TLSv1.3")
    plain = httpx.Client(base_url=cluster.url.replace("https", "http"), timeout=5)
    with pytest.raises(httpx.HTTPError):
        plain.get("/healthz")
    plain.close()


def test_discovery_names_every_resource(cluster: Cluster) -> None:
    admin = cluster.client()
    assert admin.get("/api").json()["versions"] == ["v1"]
    core = {r["name"]: r for r in admin.get("/api/v1").json()["resources"]}
    assert {"nodes", "nodes/status", "pods", "pods/status", "events", "namespaces"} <= set(core)
    assert "configmaps" in core and core["nodes"]["shortNames"] == ["no"]
    assert core["pods"]["namespaced"] and not core["nodes"]["namespaced"]
    groups = admin.get("/apis").json()["groups"]
    assert [g["name"] for g in groups] == ["coordination.k8s.io"]
    leases = admin.get("/apis/coordination.k8s.io/v1").json()["resources"]
    assert leases[0]["kind"] == "Lease"
    assert status_of(admin.get("/apis/apps/v1"))["code"] == 404


def test_system_namespaces_exist(cluster: Cluster) -> None:
    names = [
        n["metadata"]["name"] for n in cluster.client().get("/api/v1/namespaces").json()["items"]
    ]
    assert names == ["default", "kube-node-lease", "kube-public", "kube-system"]


def test_create_get_list_resource_version_is_the_store_revision(any_cluster: Cluster) -> None:
    admin = any_cluster.client()
    created = admin.post("/api/v1/nodes", json=node("n1"))
    assert created.status_code == 201, created.text
    meta = created.json()["metadata"]
    assert meta["uid"] and meta["creationTimestamp"].endswith("Z")
    kv = any_cluster.store.get("/registry/minions/n1")
    assert kv is not None and meta["resourceVersion"] == str(kv.mod_revision)
    assert b"resourceVersion" not in kv.value
    assert admin.get("/api/v1/nodes/n1").json()["metadata"] == meta
    listing = admin.get("/api/v1/nodes").json()
    assert listing["kind"] == "NodeList" and [i["metadata"]["name"] for i in listing["items"]] == [
        "n1"
    ]
    assert int(listing["metadata"]["resourceVersion"]) >= kv.mod_revision
    # The store's own Node API (the agent's and nodeipam's) reads what the API wrote.
    assert Nodes(any_cluster.store).require("n1").uid == meta["uid"]


def test_errors_are_statuses(cluster: Cluster) -> None:
    admin = cluster.client()
    missing = admin.get("/api/v1/nodes/nope")
    assert missing.status_code == 404
    assert status_of(missing)["message"] == 'nodes "nope" not found'
    assert admin.post("/api/v1/nodes", json=node("n1")).status_code == 201
    taken = admin.post("/api/v1/nodes", json=node("n1"))
    assert taken.status_code == 409
    assert status_of(taken)["reason"] == "AlreadyExists"
    assert status_of(admin.post("/api/v1/nodes", content=b"{not json"))["code"] == 400
    wrong_kind = admin.post("/api/v1/nodes", json={"kind": "Pod", "metadata": {"name": "x"}})
    assert wrong_kind.status_code == 400
    no_namespace = admin.post("/api/v1/namespaces/nowhere/pods", json=pod("p"))
    assert status_of(no_namespace)["message"] == 'namespaces "nowhere" not found'
    assert admin.get("/api/v1/nodes/n1/proxy").status_code == 404
    assert admin.put("/api/v1/nodes", json=node("n2")).status_code == 405
    assert admin.get("/api/v1/nodes?dryRun=All").status_code == 400


def test_invalid_objects_get_422_with_causes(cluster: Cluster) -> None:
    admin = cluster.client()
    bad_name = admin.post("/api/v1/nodes", json=node("Bad_Name"))
    assert bad_name.status_code == 422
    body = status_of(bad_name)
    assert body["reason"] == "Invalid"
    assert body["message"].startswith('Node "Bad_Name" is invalid: metadata.name: Invalid value')
    assert body["details"]["causes"][0]["field"] == "metadata.name"
    assert body["details"]["causes"][0]["reason"] == "FieldValueInvalid"
    bad_cidr = node("n1")
    bad_cidr["spec"] = {"podCIDR": "10.244.1.0/99", "podCIDRs": ["10.244.1.0/99"]}
    assert status_of(admin.post("/api/v1/nodes", json=bad_cidr))["details"]["causes"][0][
        "field"
    ] == ("spec.podCIDRs[0]")
    no_containers = pod("p")
    no_containers["spec"] = {}
    causes = status_of(admin.post("/api/v1/namespaces/default/pods", json=no_containers))
    assert causes["details"]["causes"] == [
        {"reason": "FieldValueRequired", "message": "Required value", "field": "spec.containers"}
    ]


def test_pod_cidr_may_only_be_set_once(cluster: Cluster) -> None:
    admin = cluster.client()
    admin.post("/api/v1/nodes", json=node("n1"))
    patch = {"spec": {"podCIDR": "10.244.1.0/24", "podCIDRs": ["10.244.1.0/24"]}}
    headers = {"Content-Type": "application/merge-patch+json"}
    assert admin.patch("/api/v1/nodes/n1", json=patch, headers=headers).status_code == 200
    again = {"spec": {"podCIDR": "10.244.2.0/24", "podCIDRs": ["10.244.2.0/24"]}}
    refused = admin.patch("/api/v1/nodes/n1", json=again, headers=headers)
    assert refused.status_code == 422
    assert 'node updates may not change podCIDR except from \\"\\" to valid' in json.dumps(
        status_of(refused)["message"]
    )


def test_update_with_a_stale_resource_version_is_a_conflict(any_cluster: Cluster) -> None:
    admin = any_cluster.client()
    first = admin.post("/api/v1/nodes", json=node("n1")).json()
    changed = json.loads(json.dumps(first))
    changed["metadata"]["labels"] = {"a": "1"}
    assert admin.put("/api/v1/nodes/n1", json=changed).status_code == 200
    stale = json.loads(json.dumps(first))
    stale["metadata"]["labels"] = {"a": "2"}
    conflict = admin.put("/api/v1/nodes/n1", json=stale)
    assert conflict.status_code == 409
    body = status_of(conflict)
    assert body["reason"] == "Conflict"
    assert body["message"] == (
        'Operation cannot be fulfilled on nodes "n1": the object has been modified; please '
        "apply your changes to the latest version and try again"
    )
    # A patch that names an old resourceVersion is a precondition too.
    pinned = {"metadata": {"resourceVersion": first["metadata"]["resourceVersion"], "labels": {}}}
    headers = {"Content-Type": "application/merge-patch+json"}
    assert admin.patch("/api/v1/nodes/n1", json=pinned, headers=headers).status_code == 409
    # uid and creationTimestamp are the server's.
    current = admin.get("/api/v1/nodes/n1").json()
    current["metadata"]["uid"] = "forged"
    assert (
        admin.put("/api/v1/nodes/n1", json=current).json()["metadata"]["uid"]
        == first["metadata"]["uid"]
    )


@pytest.mark.parametrize(
    ("content_type", "patch"),
    [
        (
            "application/strategic-merge-patch+json",
            {"status": {"conditions": [{"type": "Ready", "status": "True"}]}},
        ),
        (
            "application/merge-patch+json",
            {"status": {"conditions": [
                {"type": "MemoryPressure", "status": "False"}, {"type": "Ready", "status": "True"}
            ]}},
        ),
        (
            "application/json-patch+json",
            [{"op": "replace", "path": "/status/conditions/1/status", "value": "True"}],
        ),
    ],
)  # fmt: skip
def test_patch_formats_on_the_status_subresource(
    cluster: Cluster, content_type: str, patch: Any
) -> None:
    admin = cluster.client()
    body = node("n1")
    admin.post("/api/v1/nodes", json=body)
    conditions = [
        {"type": "MemoryPressure", "status": "False"},
        {"type": "Ready", "status": "False"},
    ]
    current = admin.get("/api/v1/nodes/n1").json()
    current["status"] = {"conditions": conditions}
    assert admin.put("/api/v1/nodes/n1/status", json=current).status_code == 200
    patched = admin.patch(
        "/api/v1/nodes/n1/status", content=json.dumps(patch), headers={"Content-Type": content_type}
    )
    assert patched.status_code == 200, patched.text
    # The strategic merge keeps MemoryPressure (conditions merge by type).
    assert patched.json()["status"]["conditions"] == [
        {"type": "MemoryPressure", "status": "False"},
        {"type": "Ready", "status": "True"},
    ]


def test_status_and_main_resource_change_only_their_part(cluster: Cluster) -> None:
    admin = cluster.client()
    admin.post("/api/v1/namespaces/default/pods", json=pod("web", "n1"))
    merge = {"Content-Type": "application/merge-patch+json"}
    status = {
        "status": {"phase": "Running", "podIP": "10.244.1.5"},
        "metadata": {"labels": {"x": "y"}},
    }
    after = admin.patch(
        "/api/v1/namespaces/default/pods/web/status", json=status, headers=merge
    ).json()
    assert after["status"]["podIP"] == "10.244.1.5" and "labels" not in after["metadata"]
    main = {"status": {"podIP": "10.244.9.9"}, "metadata": {"labels": {"x": "y"}}}
    after = admin.patch("/api/v1/namespaces/default/pods/web", json=main, headers=merge).json()
    assert after["status"]["podIP"] == "10.244.1.5" and after["metadata"]["labels"] == {"x": "y"}
    unsupported = admin.patch(
        "/api/v1/namespaces/default/pods/web",
        json={},
        headers={"Content-Type": "application/apply-patch+yaml"},
    )
    assert unsupported.status_code == 415


def test_unknown_node_fields_survive_the_store_api(cluster: Cluster) -> None:
    """A label set through the API outlives the agent's annotation update and nodeipam's
    podCIDR write, which go through podnet.store's Node type."""
    admin = cluster.client()
    body = node("n1", role="edge")
    body["spec"] = {"taints": [{"key": "k", "effect": "NoSchedule"}]}
    admin.post("/api/v1/nodes", json=body)
    nodes = Nodes(cluster.store)
    current = nodes.require("n1")
    nodes.update(current.with_annotations({"flannel.alpha.coreos.com/public-ip": "192.0.2.11"}))
    nodes.update(nodes.require("n1").with_pod_cidrs(["10.244.1.0/24"]))
    final = admin.get("/api/v1/nodes/n1").json()
    assert final["metadata"]["labels"] == {"role": "edge"}
    assert final["spec"]["taints"] == [{"key": "k", "effect": "NoSchedule"}]
    assert final["spec"]["podCIDR"] == "10.244.1.0/24"


def test_delete_with_preconditions(cluster: Cluster) -> None:
    admin = cluster.client()
    created = admin.post("/api/v1/nodes", json=node("n1")).json()
    stale = {"preconditions": {"resourceVersion": "1"}}
    assert admin.request("DELETE", "/api/v1/nodes/n1", json=stale).status_code == 409
    gone = admin.delete("/api/v1/nodes/n1").json()
    assert gone["status"] == "Success" and gone["details"]["uid"] == created["metadata"]["uid"]
    assert admin.delete("/api/v1/nodes/n1").status_code == 404


def test_list_pages_with_limit_and_continue(cluster: Cluster) -> None:
    admin = cluster.client()
    for i in range(5):
        admin.post("/api/v1/nodes", json=node(f"n{i}"))
    names, token, pages = [], "", 0
    while True:
        params = {"limit": "2", **({"continue": token} if token else {})}
        page = admin.get("/api/v1/nodes", params=params).json()
        names += [i["metadata"]["name"] for i in page["items"]]
        pages += 1
        token = page["metadata"].get("continue", "")
        if not token:
            break
        assert page["metadata"]["remainingItemCount"] == 5 - len(names)
    assert names == [f"n{i}" for i in range(5)] and pages == 3
    assert admin.get("/api/v1/nodes", params={"continue": "garbage!"}).status_code == 400


def test_label_and_field_selectors(cluster: Cluster) -> None:
    admin = cluster.client()
    admin.post("/api/v1/nodes", json=node("a", zone="x", tier="web"))
    admin.post("/api/v1/nodes", json=node("b", zone="y"))
    admin.post("/api/v1/nodes", json=node("c"))
    admin.post("/api/v1/namespaces/default/pods", json=pod("p1", "a"))
    admin.post("/api/v1/namespaces/default/pods", json=pod("p2", "b"))

    def names(path: str, **params: str) -> list[str]:
        response = admin.get(path, params=params)
        assert response.status_code == 200, response.text
        return [i["metadata"]["name"] for i in response.json()["items"]]

    assert names("/api/v1/nodes", labelSelector="zone=x") == ["a"]
    assert names("/api/v1/nodes", labelSelector="zone in (x,y),tier!=web") == ["b"]
    assert names("/api/v1/nodes", labelSelector="!zone") == ["c"]
    assert names("/api/v1/nodes", labelSelector="zone") == ["a", "b"]
    assert names("/api/v1/nodes", fieldSelector="metadata.name=b") == ["b"]
    assert names("/api/v1/pods", fieldSelector="spec.nodeName=a") == ["p1"]
    assert names(
        "/api/v1/namespaces/default/pods", fieldSelector="spec.nodeName!=a,status.phase!=Failed"
    ) == ["p2"]
    unsupported = admin.get("/api/v1/nodes", params={"fieldSelector": "spec.podCIDR=x"})
    assert status_of(unsupported)["message"] == "field label not supported: spec.podCIDR"
    assert admin.get("/api/v1/nodes", params={"labelSelector": "a in"}).status_code == 400


def test_events_by_involved_object(cluster: Cluster) -> None:
    admin = cluster.client()
    for name in ("n1", "n2"):
        event = {
            "metadata": {"name": f"{name}.1"},
            "involvedObject": {"kind": "Node", "name": name, "uid": name},
            "reason": "CIDRNotAvailable",
            "message": "no CIDR left",
            "type": "Warning",
        }
        assert admin.post("/api/v1/namespaces/default/events", json=event).status_code == 201
    events = admin.get(
        "/api/v1/namespaces/default/events", params={"fieldSelector": "involvedObject.name=n2"}
    ).json()["items"]
    assert [e["metadata"]["name"] for e in events] == ["n2.1"]
    kv = cluster.store.get("/registry/events/default/n2.1")
    assert kv is not None and kv.lease  # events expire, as with --event-ttl


def test_table_for_kubectl(cluster: Cluster) -> None:
    admin = cluster.client()
    body = node("n1")
    body["status"] = {"addresses": [{"type": "InternalIP", "address": "192.0.2.11"}]}
    admin.post("/api/v1/nodes", json=body)
    accept = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"
    got = admin.get("/api/v1/nodes", headers={"Accept": accept}).json()
    assert got["kind"] == "Table"
    columns = [c["name"] for c in got["columnDefinitions"]]
    row = dict(zip(columns, got["rows"][0]["cells"], strict=True))
    assert row["Name"] == "n1" and row["Internal-IP"] == "192.0.2.11"
    assert got["rows"][0]["object"]["metadata"]["name"] == "n1"


# -- watch -----------------------------------------------------------------------------
class Watcher:
    """Reads a watch stream in a thread and keeps its events."""

    def __init__(self, cluster: Cluster, path: str, **params: str) -> None:
        self.client = cluster.client()
        self.events: list[dict[str, Any]] = []
        self.status = 0
        self.done = threading.Event()
        self._thread = threading.Thread(target=self._read, args=(path, params), daemon=True)
        self._thread.start()

    def _read(self, path: str, params: dict[str, str]) -> None:
        try:
            with self.client.stream("GET", path, params={"watch": "true", **params}) as response:
                self.status = response.status_code
                for line in response.iter_lines():
                    if line:
                        self.events.append(json.loads(line))
        except httpx.HTTPError:
            pass
        finally:
            self.done.set()

    def wait_for(self, count: int, timeout: float = 20) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while len(self.events) < count and time.monotonic() < deadline:
            time.sleep(0.02)
        assert len(self.events) >= count, self.events
        return self.events

    def kinds(self) -> list[tuple[str, str]]:
        return [(e["type"], e["object"]["metadata"].get("name", "")) for e in self.events]


def test_watch_streams_changes_from_a_resource_version(any_cluster: Cluster) -> None:
    admin = any_cluster.client()
    admin.post("/api/v1/nodes", json=node("old"))
    rv = admin.get("/api/v1/nodes").json()["metadata"]["resourceVersion"]
    watcher = Watcher(any_cluster, "/api/v1/nodes", resourceVersion=rv, timeoutSeconds="30")
    time.sleep(0.3)
    admin.post("/api/v1/nodes", json=node("n1"))
    merge = {"Content-Type": "application/merge-patch+json"}
    admin.patch("/api/v1/nodes/n1", json={"metadata": {"labels": {"a": "b"}}}, headers=merge)
    admin.delete("/api/v1/nodes/n1")
    admin.post("/api/v1/namespaces/default/configmaps", json={"metadata": {"name": "cm"}})
    events = watcher.wait_for(3)
    assert watcher.kinds()[:3] == [("ADDED", "n1"), ("MODIFIED", "n1"), ("DELETED", "n1")]
    revisions = [int(e["object"]["metadata"]["resourceVersion"]) for e in events]
    assert revisions == sorted(revisions) and revisions[0] > int(rv)
    assert events[1]["object"]["metadata"]["labels"] == {"a": "b"}
    assert events[2]["object"]["metadata"]["labels"] == {"a": "b"}  # its last state


def test_watch_without_resource_version_starts_with_the_current_objects(cluster: Cluster) -> None:
    admin = cluster.client()
    admin.post("/api/v1/nodes", json=node("a"))
    admin.post("/api/v1/nodes", json=node("b"))
    watcher = Watcher(cluster, "/api/v1/nodes", timeoutSeconds="30")
    watcher.wait_for(2)
    admin.post("/api/v1/nodes", json=node("c"))
    watcher.wait_for(3)
    assert watcher.kinds() == [("ADDED", "a"), ("ADDED", "b"), ("ADDED", "c")]


def test_watch_with_a_selector_sees_objects_enter_and_leave(cluster: Cluster) -> None:
    admin = cluster.client()
    admin.post("/api/v1/nodes", json=node("n1"))
    rv = admin.get("/api/v1/nodes").json()["metadata"]["resourceVersion"]
    watcher = Watcher(
        cluster, "/api/v1/nodes", resourceVersion=rv, labelSelector="pool=a", timeoutSeconds="30"
    )
    time.sleep(0.3)
    merge = {"Content-Type": "application/merge-patch+json"}
    for labels in ({"pool": "a"}, {"pool": "a", "x": "1"}, {"pool": "b"}):
        admin.patch("/api/v1/nodes/n1", json={"metadata": {"labels": labels}}, headers=merge)
    watcher.wait_for(3)
    assert watcher.kinds() == [("ADDED", "n1"), ("MODIFIED", "n1"), ("DELETED", "n1")]


def test_watch_by_field_and_namespace(cluster: Cluster) -> None:
    admin = cluster.client()
    admin.post("/api/v1/namespaces", json={"metadata": {"name": "other"}})
    watcher = Watcher(
        cluster,
        "/api/v1/namespaces/default/pods",
        fieldSelector="spec.nodeName=n1",
        timeoutSeconds="30",
    )
    time.sleep(0.3)
    admin.post("/api/v1/namespaces/default/pods", json=pod("elsewhere", "n2"))
    admin.post("/api/v1/namespaces/other/pods", json=pod("other-ns", "n1"))
    admin.post("/api/v1/namespaces/default/pods", json=pod("mine", "n1"))
    watcher.wait_for(1)
    time.sleep(0.3)
    assert watcher.kinds() == [("ADDED", "mine")]


def test_watch_bookmarks_and_timeout(cluster: Cluster, monkeypatch: pytest.MonkeyPatch) -> None:
    from podnet.apiserver import _http

    monkeypatch.setattr(_http, "BOOKMARK_SECONDS", 0.2)
    watcher = Watcher(
        cluster,
        "/api/v1/nodes",
        resourceVersion="0",
        allowWatchBookmarks="true",
        timeoutSeconds="2",
    )
    assert watcher.done.wait(20), "timeoutSeconds ends the stream"
    assert watcher.status == 200
    bookmarks = [e for e in watcher.events if e["type"] == "BOOKMARK"]
    assert bookmarks and bookmarks[0]["object"]["kind"] == "Node"
    assert (
        int(bookmarks[-1]["object"]["metadata"]["resourceVersion"])
        >= cluster.server.cache.revision - 1
    )


def test_watch_from_before_the_window_is_410_expired(tmp_path: Any) -> None:
    from podnet.store import open_store
    from tests.apiserver.conftest import start_cluster

    store = open_store(f"sqlite://{tmp_path}/cluster.db")
    running = start_cluster(store, tmp_path, watch_window=4)
    try:
        admin = running.client()
        first = admin.post("/api/v1/nodes", json=node("n0")).json()["metadata"]["resourceVersion"]
        for i in range(1, 12):
            admin.post("/api/v1/nodes", json=node(f"n{i}"))
        deadline = time.monotonic() + 10
        while running.server.cache.revision < int(
            admin.get("/api/v1/nodes").json()["metadata"]["resourceVersion"]
        ):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        watcher = Watcher(running, "/api/v1/nodes", resourceVersion=first, timeoutSeconds="10")
        assert watcher.done.wait(20)
        assert watcher.status == 200
        assert [e["type"] for e in watcher.events] == ["ERROR"]
        error = watcher.events[0]["object"]
        assert error["code"] == 410 and error["reason"] == "Expired"
        assert error["message"].startswith(f"too old resource version: {first} (")
        for client in running.clients:
            client.close()
    finally:
        running.server.close()
        store.close()


def test_list_at_any_version_comes_from_the_watch_cache(cluster: Cluster) -> None:
    admin = cluster.client()
    admin.post("/api/v1/nodes", json=node("a", zone="x"))
    admin.post("/api/v1/nodes", json=node("b"))
    stored = admin.get("/api/v1/nodes").json()
    deadline = time.monotonic() + 10
    while cluster.server.cache.revision < int(stored["metadata"]["resourceVersion"]):
        assert time.monotonic() < deadline
        time.sleep(0.02)
    cached = admin.get("/api/v1/nodes", params={"resourceVersion": "0"}).json()
    assert cached["items"] == stored["items"]
    selected = admin.get("/api/v1/nodes", params={"resourceVersion": "0", "labelSelector": "zone"})
    assert [i["metadata"]["name"] for i in selected.json()["items"]] == ["a"]


def test_node_status_patch_keeps_annotations_and_labels_but_not_spec(cluster: Cluster) -> None:
    """flanneld publishes its annotations through nodes/status (a strategic merge patch of
    metadata.annotations); kube-apiserver's node status strategy resets only the spec."""
    n1 = cluster.client("n1")
    cluster.client().post("/api/v1/nodes", json=node("n1"))
    patch = {
        "metadata": {"annotations": {"flannel.alpha.coreos.com/public-ip": "192.0.2.11"}},
        "spec": {"podCIDR": "10.244.9.0/24"},
    }
    after = n1.patch(
        "/api/v1/nodes/n1/status",
        content=json.dumps(patch),
        headers={"Content-Type": "application/strategic-merge-patch+json"},
    )
    assert after.status_code == 200, after.text
    stored = cluster.client().get("/api/v1/nodes/n1").json()
    assert stored["metadata"]["annotations"] == {"flannel.alpha.coreos.com/public-ip": "192.0.2.11"}
    assert stored.get("spec", {}).get("podCIDR") is None
