# The official client's models make every field Optional and its config module is untyped.
# mypy: disable-error-code="union-attr,no-untyped-call,arg-type"
"""The lab's nodeipam controller is an API client with the controller manager's identity:
it holds the leader Lease, and `kubectl delete node n3` frees n3's podCIDR for a new node."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Callable
from typing import Any

import pytest
from kubernetes import client as k8s
from kubernetes import config as k8s_config

from podnet.lab import Lab

pytestmark = [pytest.mark.root, pytest.mark.slow]


def wait_for(what: str, check: Callable[[], Any], timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := check()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)
    return value


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
def test_kubectl_delete_node_frees_its_pod_cidr(lab: Lab) -> None:
    lab.up(3)
    with k8s_config.new_client_from_config(lab.kubeconfig) as api_client:
        core = k8s.CoreV1Api(api_client)
        lease = k8s.CoordinationV1Api(api_client).read_namespaced_lease(
            "podnet-nodeipam", "kube-system"
        )
        assert lease.spec.holder_identity and lease.spec.lease_duration_seconds == 15
        n3 = core.read_node("n3")
        freed, uid = n3.spec.pod_cidr, n3.metadata.uid
        assert freed

        done = subprocess.run(
            ["kubectl", "--kubeconfig", lab.kubeconfig, "delete", "node", "n3"],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr

        # The controller hands blocks out next-fit: the freed one comes round once every
        # block after it is taken. 256 /24s in the lab's /16: as many new nodes as that
        # reach it (those left over wait, CIDRNotAvailable).
        for i in range(256):
            core.create_node(k8s.V1Node(metadata=k8s.V1ObjectMeta(name=f"new-{i:03d}")))

        def holder_of_freed() -> k8s.V1Node | None:
            for node in core.list_node().items:
                if node.spec and node.spec.pod_cidr == freed and node.metadata.uid != uid:
                    return node
            return None

        holder = wait_for(f"a new node with {freed}", holder_of_freed, timeout=120)
        print(f"\n{freed} of the deleted n3 went to {holder.metadata.name}")
        cidrs = [n.spec.pod_cidr for n in core.list_node().items if n.spec and n.spec.pod_cidr]
        assert len(cidrs) == len(set(cidrs)) == 256  # every block once, none twice
