"""deploy/kube-podnet.yml, the nodeipam part: its Deployment's command line is the one
`podnet nodeipam run` parses, its Lease lives where its Role grants it, and its RBAC is
exactly the requests the controller and its leader election make (recorded from a real
controller against podnet's API server). Schema validation of every document is
test_kube_podnet.py's."""

from __future__ import annotations

import re
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import yaml
from lightkube import Client

from podnet.cli.main import build_parser
from podnet.nodeipam import (
    KubeController,
    LeaderElectionConfig,
    LeaderElector,
    kube_client,
    parse_config,
)
from tests.apiserver.conftest import Cluster

MANIFEST = Path(__file__).resolve().parents[2] / "deploy" / "kube-podnet.yml"
NAME = "podnet-nodeipam"


def documents() -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(MANIFEST.read_text()) if doc]


def find(kind: str, name: str) -> dict[str, Any]:
    found = [d for d in documents() if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind} {name}: {len(found)} documents"
    return found[0]


def deployment_args() -> tuple[dict[str, Any], list[str]]:
    deployment = find("Deployment", NAME)
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["command"] == ["podnet"]
    return deployment, list(container["args"])


def test_the_deployment_runs_two_replicas_of_podnet_nodeipam_run() -> None:
    deployment, args = deployment_args()
    assert deployment["spec"]["replicas"] == 2
    pod = deployment["spec"]["template"]["spec"]
    assert pod["hostNetwork"] is True  # it runs before pod networking exists
    parsed = build_parser().parse_args(args)
    assert (parsed.command, parsed.ipam_command) == ("nodeipam", "run")
    assert parsed.leader_elect is True and parsed.kubeconfig is None  # in-cluster
    assert parsed.store is None
    namespace = deployment["metadata"]["namespace"]
    assert parsed.leader_elect_resource_namespace == namespace
    assert parsed.leader_elect_resource_name == NAME
    # KCM's defaults: 15 s lease, 10 s renew deadline, 2 s retry
    assert (
        parsed.leader_elect_lease_duration,
        parsed.leader_elect_renew_deadline,
        parsed.leader_elect_retry_period,
    ) == (15, 10, 2)
    account = find("ServiceAccount", pod["serviceAccountName"])
    assert account["metadata"]["namespace"] == namespace
    subject = {"kind": "ServiceAccount", "name": NAME, "namespace": namespace}
    assert find("ClusterRoleBinding", NAME)["subjects"] == [subject]
    role_binding = find("RoleBinding", f"{NAME}-leader-election")
    assert role_binding["subjects"] == [subject]
    assert role_binding["metadata"]["namespace"] == namespace
    assert find("Role", f"{NAME}-leader-election")["metadata"]["namespace"] == namespace


# ---- RBAC: exactly what the controller asks for ----------------------------------------

_PATH = re.compile(
    r"^/(?:api/v1|apis/(?P<group>[^/]+)/v1)"
    r"(?:/namespaces/(?P<namespace>[^/]+))?/(?P<resource>[a-z]+)(?:/(?P<name>[^/]+))?$"
)
Asked = tuple[str, str, str, str, str]  # group, resource, verb, namespace, name


def rbac_request(request: httpx.Request) -> Asked:
    match = _PATH.match(request.url.path)
    assert match, f"nodeipam asked for {request.url.path}"
    method, name = request.method, match["name"] or ""
    if method == "GET":
        verb = "get" if name else "watch" if request.url.params.get("watch") else "list"
    else:
        verb = {"PATCH": "patch", "PUT": "update", "POST": "create", "DELETE": "delete"}[method]
    return match["group"] or "", match["resource"], verb, match["namespace"] or "", name


def granted(asked: Asked) -> bool:
    group, resource, verb, namespace, name = asked
    for rule in find("ClusterRole", NAME)["rules"]:
        if group in rule["apiGroups"] and resource in rule["resources"] and verb in rule["verbs"]:
            return True
    role = find("Role", f"{NAME}-leader-election")
    if namespace != role["metadata"]["namespace"]:
        return False
    for rule in role["rules"]:
        names = rule.get("resourceNames")
        if names is not None and name not in names:
            continue
        if group in rule["apiGroups"] and resource in rule["resources"] and verb in rule["verbs"]:
            return True
    return False


def recording(client: Client, asked: set[Asked]) -> Client:
    # lightkube's Client wraps one httpx client: every request it sends passes this hook.
    client._client._client.event_hooks["request"].append(lambda r: asked.add(rbac_request(r)))
    return client


def every_rule(rule: dict[str, Any], namespace: str) -> set[Asked]:
    return {
        (group, resource, verb, namespace, name)
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
        for name in rule.get("resourceNames", [""])
    }


def test_rbac_is_exactly_what_nodeipam_asks_for(cluster: Cluster) -> None:
    deployment, args = deployment_args()
    namespace = deployment["metadata"]["namespace"]
    admin = cluster.client("admin")
    created = admin.post("/api/v1/namespaces", json={"metadata": {"name": namespace}})
    assert created.status_code == 201, created.text
    asked: set[Asked] = set()

    # Leader election as the Deployment configures it: create, renew, release.
    parsed = build_parser().parse_args(args)
    election = LeaderElectionConfig(
        identity="replica-a",
        name=parsed.leader_elect_resource_name,
        namespace=parsed.leader_elect_resource_namespace,
    )
    kubeconfig = cluster.kubeconfigs["controller"]
    elector = LeaderElector(recording(kube_client(kubeconfig), asked), election)
    assert elector.try_acquire_or_renew()
    assert elector.try_acquire_or_renew()
    elector.release()

    # The controller: list, watch, patch; a full range records an event, a repeat patches
    # it; a patch refused because the node got podCIDRs meanwhile reads the node.
    client = recording(kube_client(kubeconfig), asked)
    controller = KubeController(client, parse_config("10.244.0.0/24", node_cidr_mask_size=24))
    stop = threading.Event()
    runner = threading.Thread(target=controller.run, args=(stop,))
    runner.start()
    try:
        assert controller.synced.wait(30)
        for name in ("n1", "n2"):
            assert admin.post("/api/v1/nodes", json={"metadata": {"name": name}}).status_code == 201
        deadline = time.monotonic() + 30
        while controller.waiting != ["n2"]:
            assert time.monotonic() < deadline, "n2 never waited for a block"
            time.sleep(0.05)
        uid = admin.get("/api/v1/nodes/n2").json()["metadata"]["uid"]
        controller.recorder.node_status_change("n2", uid, "CIDRNotAvailable")  # a repeat
        admin.patch(
            "/api/v1/nodes/n2",
            content=b'{"spec":{"podCIDR":"10.1.0.0/24","podCIDRs":["10.1.0.0/24"]}}',
            headers={"Content-Type": "application/merge-patch+json"},
        )
        taken = controller.sets[0].cluster_cidr
        controller._patch("n2", uid, (taken,))  # refused (422): the node is read
    finally:
        stop.set()
        runner.join(timeout=30)
        client.close()
        elector.client.close()

    refused = sorted(a for a in asked if not granted(a))
    assert refused == [], f"requests the manifest does not grant: {refused}"
    unused = []
    role = find("Role", f"{NAME}-leader-election")
    for rule in find("ClusterRole", NAME)["rules"]:
        for group, resource, verb, _ns, _name in every_rule(rule, ""):
            if not any(a[:3] == (group, resource, verb) for a in asked):
                unused.append((group, resource, verb))
    for rule in role["rules"]:
        for wanted in every_rule(rule, namespace):
            group, resource, verb, ns, name = wanted
            if not any(
                a[:4] == (group, resource, verb, ns) and (not name or a[4] == name) for a in asked
            ):
                unused.append((group, resource, verb))
    assert unused == [], f"granted but never asked for: {unused}"
