"""The lab's node lifecycle controller against podnet's API server (in this process), its
clock in the test's hands: a node whose Lease stops being renewed is marked Unknown after
the grace period, as kube-controller-manager marks it, and kubectl shows it NotReady."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from kubernetes.client import ApiException

from podnet.lab._lifecycle import NodeLifecycle
from podnet.store import open_store
from tests.apiserver.conftest import Cluster, start_cluster

LEASES = "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases"
STAMP = "2026-12-02T06:00:00Z"


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    store = open_store(f"sqlite://{tmp_path}/cluster.db")
    running = start_cluster(store, tmp_path)
    try:
        yield running
    finally:
        for client in running.clients:
            client.close()
        running.server.close()
        store.close()


def ready_node(http: httpx.Client, name: str) -> None:
    """A node as the lab's driver keeps it: Ready, and its Lease renewed."""
    assert http.post("/api/v1/nodes", json={"metadata": {"name": name}}).status_code == 201
    ready = {"type": "Ready", "status": "True", "reason": "KubeletReady", "message": "posting",
             "lastHeartbeatTime": STAMP, "lastTransitionTime": STAMP}  # fmt: skip
    merge = {"Content-Type": "application/strategic-merge-patch+json"}
    answer = http.patch(
        f"/api/v1/nodes/{name}/status",
        json={"status": {"conditions": [ready]}},
        headers=merge,
    )
    assert answer.status_code == 200, answer.text
    lease = {"metadata": {"name": name, "namespace": "kube-node-lease"},
             "spec": {"holderIdentity": name, "leaseDurationSeconds": 40,
                      "renewTime": "2026-12-02T06:00:00.000000Z"}}  # fmt: skip
    assert http.post(LEASES, json=lease).status_code == 201


def renew(http: httpx.Client, name: str, when: str) -> None:
    lease = http.get(f"{LEASES}/{name}").json()
    lease["spec"]["renewTime"] = when
    assert http.put(f"{LEASES}/{name}", json=lease).status_code == 200


def ready_of(http: httpx.Client, name: str) -> dict[str, Any]:
    conditions = http.get(f"/api/v1/nodes/{name}").json()["status"]["conditions"]
    found: dict[str, Any] = next(c for c in conditions if c["type"] == "Ready")
    return found


def test_a_node_whose_lease_is_not_renewed_goes_unknown(cluster: Cluster) -> None:
    http = cluster.client("n1")
    admin = cluster.client()
    for name in ("n1", "n2"):
        ready_node(cluster.client(name), name)
    now = [100.0]
    lifecycle = NodeLifecycle(cluster.kubeconfigs["controller"], grace=40, clock=lambda: now[0])
    assert lifecycle.monitor() == []  # first sight of both
    now[0] = 130.0
    renew(http, "n1", "2026-12-02T06:00:30.000000Z")  # n1's driver beats; n2's is gone
    assert lifecycle.monitor() == []
    now[0] = 140.0
    assert lifecycle.monitor() == []  # n2: 40 s, not more
    now[0] = 141.0
    assert lifecycle.monitor() == ["n2"]
    ready = ready_of(admin, "n2")
    assert (ready["status"], ready["reason"], ready["message"]) == (
        "Unknown", "NodeStatusUnknown", "Kubelet stopped posting node status."
    )  # fmt: skip
    assert ready["lastHeartbeatTime"] == STAMP  # what the node last said, kept
    assert ready["lastTransitionTime"] != STAMP
    assert ready_of(admin, "n1")["status"] == "True"
    if shutil.which("kubectl"):
        listed = subprocess.run(
            ["kubectl", "--kubeconfig", cluster.kubeconfigs["admin"], "get", "nodes"],
            capture_output=True, text=True, timeout=60, check=True,
        ).stdout  # fmt: skip
        status = {line.split()[0]: line.split()[1] for line in listed.splitlines()[1:]}
        assert status == {"n1": "Ready", "n2": "NotReady"}
    now[0] = 200.0
    assert lifecycle.monitor() == ["n1"]  # n1 went quiet too; n2 is not marked twice
    # n2's driver is back: while it renews its Lease, nothing is marked again.
    renew(cluster.client("n2"), "n2", "2026-12-02T06:01:40.000000Z")
    assert lifecycle.monitor() == []
    now[0] = 239.0
    assert lifecycle.monitor() == []


def test_only_the_controller_s_identity_may_mark_nodes(cluster: Cluster) -> None:
    """The scheduler's identity may not write node status: the lifecycle controller runs
    with the controller's."""
    ready_node(cluster.client("n1"), "n1")
    now = [0.0]
    lifecycle = NodeLifecycle(cluster.kubeconfigs["scheduler"], grace=1, clock=lambda: now[0])
    lifecycle.monitor()
    now[0] = 5.0
    with pytest.raises(ApiException) as refused:
        lifecycle.monitor()
    assert refused.value.status == 403
