"""Who may do what: the admin, each node (the Node authorizer and NodeRestriction), the
controller manager, and anyone else; refusals are 403 Statuses in the API server's
words."""

from __future__ import annotations

import time
from typing import Any

import pytest

from podnet.apiserver import TokenFile, TokenFileError, Tokens, write_token_file
from tests.apiserver.conftest import Cluster
from tests.apiserver.test_wire import node, pod, status_of

MERGE = {"Content-Type": "application/merge-patch+json"}


@pytest.fixture
def two_nodes(cluster: Cluster) -> Cluster:
    admin = cluster.client()
    for name in ("n1", "n2"):
        assert admin.post("/api/v1/nodes", json=node(name)).status_code == 201
    admin.post("/api/v1/namespaces/default/pods", json=pod("on-n1", "n1"))
    admin.post("/api/v1/namespaces/default/pods", json=pod("on-n2", "n2"))
    return cluster


def forbidden(response: Any) -> str:
    assert response.status_code == 403, response.text
    body = status_of(response)
    assert body["reason"] == "Forbidden"
    return str(body["message"])


def test_a_node_changes_only_its_own_node(two_nodes: Cluster) -> None:
    n1 = two_nodes.client("n1")
    labels = {"metadata": {"labels": {"x": "y"}}}
    assert n1.patch("/api/v1/nodes/n1", json=labels, headers=MERGE).status_code == 200
    assert (
        n1.patch("/api/v1/nodes/n1/status", json={"status": {}}, headers=MERGE).status_code == 200
    )
    message = forbidden(n1.patch("/api/v1/nodes/n2", json=labels, headers=MERGE))
    assert message == 'nodes "n2" is forbidden: node "n1" is not allowed to modify node "n2"'
    forbidden(n1.patch("/api/v1/nodes/n2/status", json={"status": {}}, headers=MERGE))
    forbidden(n1.post("/api/v1/nodes", json=node("n3")))
    assert n1.delete("/api/v1/nodes/n2").status_code == 403
    # Reading is allowed.
    assert n1.get("/api/v1/nodes").status_code == 200
    assert n1.get("/api/v1/namespaces/default/pods").status_code == 200


def test_a_node_writes_status_only_of_pods_bound_to_it(two_nodes: Cluster) -> None:
    n1 = two_nodes.client("n1")
    status = {"status": {"podIP": "10.244.1.2", "phase": "Running"}}
    own = n1.patch("/api/v1/namespaces/default/pods/on-n1/status", json=status, headers=MERGE)
    assert own.status_code == 200 and own.json()["status"]["podIP"] == "10.244.1.2"
    message = forbidden(
        n1.patch("/api/v1/namespaces/default/pods/on-n2/status", json=status, headers=MERGE)
    )
    assert message == (
        'pods "on-n2" is forbidden: node "n1" can only update pod status for pods with '
        "spec.nodeName set to itself"
    )
    assert two_nodes.client().get("/api/v1/namespaces/default/pods/on-n2").json()["status"] == {
        "phase": "Pending"
    }
    # The main resource is not the node's to change, nor to create.
    message = forbidden(n1.patch("/api/v1/namespaces/default/pods/on-n1", json={}, headers=MERGE))
    assert message == (
        'pods "on-n1" is forbidden: User "system:node:n1" cannot patch resource "pods" in API '
        'group "" in the namespace "default"'
    )
    forbidden(n1.post("/api/v1/namespaces/default/pods", json=pod("sneaky", "n1")))


def test_a_node_replaces_status_and_deletes_only_pods_bound_to_it(two_nodes: Cluster) -> None:
    n1, admin = two_nodes.client("n1"), two_nodes.client()
    pods = "/api/v1/namespaces/default/pods"
    other = admin.get(f"{pods}/on-n2").json()
    other["status"] = {"phase": "Running", "podIP": "10.244.2.9"}
    message = forbidden(n1.put(f"{pods}/on-n2/status", json=other))
    assert message.endswith("can only update pod status for pods with spec.nodeName set to itself")
    own = admin.get(f"{pods}/on-n1").json()
    own["status"] = {"phase": "Running", "podIP": "10.244.1.9"}
    assert n1.put(f"{pods}/on-n1/status", json=own).json()["status"]["podIP"] == "10.244.1.9"
    message = forbidden(n1.delete(f"{pods}/on-n2", params={"dryRun": "All"}))
    assert message == (
        'pods "on-n2" is forbidden: node "n1" can only delete pods with spec.nodeName set to itself'
    )
    forbidden(n1.delete(f"{pods}/on-n2"))
    assert admin.get(f"{pods}/on-n2").json()["metadata"].get("deletionTimestamp") is None
    # A pod that is not there is a 404, whoever asks.
    assert n1.delete(f"{pods}/gone").status_code == 404
    missing = {**own, "metadata": {"name": "gone", "namespace": "default"}}
    assert n1.put(f"{pods}/gone/status", json=missing).status_code == 404
    # Its own pod: deleted gracefully (it runs on n1), then for good with grace period 0.
    terminating = n1.delete(f"{pods}/on-n1")
    assert terminating.status_code == 200 and terminating.json()["metadata"]["deletionTimestamp"]
    assert n1.delete(f"{pods}/on-n1", params={"gracePeriodSeconds": "0"}).status_code == 200
    assert admin.get(f"{pods}/on-n1").status_code == 404


def test_a_node_holds_only_its_own_lease(two_nodes: Cluster) -> None:
    n1 = two_nodes.client("n1")
    path = "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases"
    lease = {"metadata": {"name": "n1"}, "spec": {"holderIdentity": "n1"}}
    assert n1.post(path, json=lease).status_code == 201
    other = {"metadata": {"name": "n2"}, "spec": {"holderIdentity": "n1"}}
    message = forbidden(n1.post(path, json=other))
    assert message.startswith('leases.coordination.k8s.io "n2" is forbidden: User "system:node:n1"')


def test_the_controller_manager_sets_pod_cidrs(two_nodes: Cluster) -> None:
    controller = two_nodes.client("controller")
    spec = {"spec": {"podCIDR": "10.244.2.0/24", "podCIDRs": ["10.244.2.0/24"]}}
    assert controller.patch("/api/v1/nodes/n2", json=spec, headers=MERGE).status_code == 200
    forbidden(controller.delete("/api/v1/nodes/n2"))
    forbidden(
        controller.post("/api/v1/namespaces/default/configmaps", json={"metadata": {"name": "c"}})
    )


def test_an_unknown_user_may_only_discover(two_nodes: Cluster) -> None:
    stranger = two_nodes.client("stranger")
    assert stranger.get("/api/v1").status_code == 200
    message = forbidden(stranger.get("/api/v1/nodes"))
    assert message == (
        'nodes is forbidden: User "alice" cannot list resource "nodes" in API group "" at the '
        "cluster scope"
    )


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "no tokens"),
        ("tok,user\n", "expected token,user,uid"),
        (",user,uid\n", "expected token,user,uid"),
    ],
)
def test_token_file_problems_are_named(text: str, problem: str) -> None:
    with pytest.raises(TokenFileError, match=problem):
        Tokens.parse(text)


def test_token_file_groups() -> None:
    tokens = Tokens.parse('# comment\nabc,system:node:n1,u1,"system:nodes,extra"\n')
    identity = tokens.authenticate("Bearer abc")
    assert identity is not None and identity.groups == ("system:nodes", "extra")
    assert identity.node_name == "n1"
    assert tokens.authenticate("Bearer abd") is None
    assert tokens.token_of("system:node:n1") == "abc"


def test_a_token_file_is_read_again_when_it_changes(tmp_path: Any, monkeypatch: Any) -> None:
    path = str(tmp_path / "tokens.csv")
    write_token_file(path, [("one", "system:node:n1", "n1", ("system:nodes",))])
    tokens = TokenFile(path)
    assert tokens.authenticate("Bearer one") is not None
    assert tokens.authenticate("Bearer two") is None
    write_token_file(
        path,
        [("one", "system:node:n1", "n1", ("system:nodes",)),
         ("two", "system:node:n3", "n3", ("system:nodes",))],
    )  # fmt: skip
    clock = [time.monotonic() + 10]
    monkeypatch.setattr(time, "monotonic", lambda: clock[0])
    identity = tokens.authenticate("Bearer two")
    assert identity is not None and identity.node_name == "n3"
    # A broken file keeps what was read before.
    (tmp_path / "tokens.csv").write_text("broken\n")
    clock[0] += 5
    assert tokens.authenticate("Bearer two") is not None
