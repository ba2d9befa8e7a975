"""Node objects: Kubernetes shape, resourceVersion = mod revision, API-server validation."""

from __future__ import annotations

import json
import re
import time

import pytest

from podnet.store import (
    AlreadyExists,
    Conflict,
    Invalid,
    Node,
    Nodes,
    NotFound,
    Store,
    WatchEvent,
)


def test_registered_node_has_the_kubernetes_shape(store: Store) -> None:
    nodes = Nodes(store)
    node = nodes.register("n1", addresses=["192.0.2.10"], annotations={"a/b": "c"})
    data = nodes.require("n1").to_json()
    assert data == {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": "n1",
            "uid": node.uid,
            "creationTimestamp": node.creation_timestamp,
            "annotations": {"a/b": "c"},
            "resourceVersion": str(store.get("/registry/minions/n1").mod_revision),  # type: ignore[union-attr]
        },
        "spec": {},
        "status": {"addresses": [{"type": "InternalIP", "address": "192.0.2.10"}]},
    }
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", node.creation_timestamp)
    assert node.pod_cidr == ""
    assert node.internal_ip == "192.0.2.10"


def test_resource_version_is_not_stored_but_read_from_the_revision(store: Store) -> None:
    nodes = Nodes(store)
    nodes.register("n1")
    raw = store.get("/registry/minions/n1")
    assert raw is not None
    assert b"resourceVersion" not in raw.value
    assert nodes.require("n1").resource_version == raw.mod_revision


def test_register_twice_is_already_exists(store: Store) -> None:
    nodes = Nodes(store)
    nodes.register("n1")
    with pytest.raises(AlreadyExists, match='^nodes "n1" already exists$'):
        nodes.register("n1")


@pytest.mark.parametrize(
    ("name", "addresses", "cause"),
    [
        (
            "Bad_Name",
            [],
            'metadata.name: Invalid value: "Bad_Name": a lowercase RFC 1123 subdomain',
        ),
        ("-x", [], "metadata.name: Invalid value"),
        ("n1", ["300.1.1.1"], 'status.addresses[0].address: Invalid value: "300.1.1.1"'),
    ],
)
def test_register_validates(store: Store, name: str, addresses: list[str], cause: str) -> None:
    with pytest.raises(Invalid) as caught:
        Nodes(store).register(name, addresses=addresses)
    assert str(caught.value).startswith(f'Node "{name}" is invalid: {cause}')
    assert store.list("/registry/minions/").items == []


def test_pod_cidr_can_be_set_once_and_never_changed(store: Store) -> None:
    nodes = Nodes(store)
    node = nodes.register("n1")
    assigned = nodes.update(node.with_pod_cidrs(["10.244.3.0/24"]))
    stored = nodes.require("n1")
    assert stored.to_json()["spec"] == {"podCIDR": "10.244.3.0/24", "podCIDRs": ["10.244.3.0/24"]}
    assert stored.resource_version == assigned.resource_version

    for change in (["10.244.4.0/24"], [], ["10.244.3.0/24", "fd00::/64"]):
        with pytest.raises(Invalid) as caught:
            nodes.update(stored.with_pod_cidrs(change))
        assert str(caught.value) == (
            'Node "n1" is invalid: spec.podCIDRs: Forbidden: '
            'node updates may not change podCIDR except from "" to valid'
        )
    # Other fields may still change.
    annotated = nodes.update(stored.with_annotations({"flannel.alpha.coreos.com/public-ip": "x"}))
    assert annotated.pod_cidr == "10.244.3.0/24"


@pytest.mark.parametrize(
    ("cidrs", "cause"),
    [
        (["bogus"], 'spec.podCIDRs[0]: Invalid value: "bogus": must be a valid CIDR value'),
        (
            ["10.244.1.0/24", "10.244.2.0/24"],
            'spec.podCIDRs: Invalid value: ["10.244.1.0/24", "10.244.2.0/24"]: '
            "may specify no more than one CIDR for each IP family",
        ),
    ],
)
def test_pod_cidrs_must_be_valid(store: Store, cidrs: list[str], cause: str) -> None:
    nodes = Nodes(store)
    node = nodes.register("n1")
    with pytest.raises(Invalid, match=re.escape(cause)):
        nodes.update(node.with_pod_cidrs(cidrs))


def test_dual_stack_pod_cidrs(store: Store) -> None:
    nodes = Nodes(store)
    node = nodes.register("n1")
    nodes.update(node.with_pod_cidrs(["10.244.0.0/24", "fd00:10:244::/64"]))
    spec = nodes.require("n1").to_json()["spec"]
    assert spec == {"podCIDR": "10.244.0.0/24", "podCIDRs": ["10.244.0.0/24", "fd00:10:244::/64"]}


def test_update_is_compare_and_swap(store: Store) -> None:
    nodes = Nodes(store)
    node = nodes.register("n1")
    nodes.update(node.with_annotations({"k": "v1"}))
    with pytest.raises(Conflict, match='Operation cannot be fulfilled on nodes "n1"'):
        nodes.update(node.with_pod_cidrs(["10.244.0.0/24"]))
    assert nodes.require("n1").pod_cidr == ""
    nodes.delete("n1")
    with pytest.raises(NotFound, match='^nodes "n1" not found$'):
        nodes.update(node)


def test_list_watch_and_delete(store: Store) -> None:
    nodes = Nodes(store)
    for name in ("n2", "n1", "n10"):
        nodes.register(name)
    listed, revision = nodes.list()
    assert [n.name for n in listed] == ["n1", "n10", "n2"]
    with store.watch(nodes.prefix, from_revision=revision + 1) as watch:
        nodes.register("n3")
        assert nodes.delete("n1")
        assert not nodes.delete("n1")
        events: list[WatchEvent] = []
        deadline = time.monotonic() + 5
        while len(events) < 2 and time.monotonic() < deadline:
            events += watch.get(0.05)
    changes = [nodes.change(e) for e in events]
    assert [(c.type, c.name) for c in changes] == [("PUT", "n3"), ("DELETE", "n1")]
    assert changes[0].node is not None and changes[0].node.name == "n3"
    assert changes[1].node is None


def test_json_round_trip() -> None:
    node = Node(name="n1", pod_cidrs=("10.0.0.0/24",), annotations={"a": "b"}, uid="u")
    assert Node.from_json(node.to_json()) == node
    with pytest.raises(Invalid):
        Node.from_json({"kind": "Node"})
    with pytest.raises(Invalid):
        Node.from_json({"kind": "Pod", "metadata": {"name": "x"}})


def test_update_with_a_base_checks_the_rules_against_it(store: Store) -> None:
    nodes = Nodes(store)
    node = nodes.register("n1")
    assigned = nodes.update(node.with_pod_cidrs(["10.244.0.0/24"]), base=node)
    with pytest.raises(Invalid, match="may not change podCIDR"):
        nodes.update(assigned.with_pod_cidrs(["10.244.9.0/24"]), base=assigned)
    with pytest.raises(Conflict):
        nodes.update(node.with_annotations({"a": "b"}), base=node)  # stale base
    nodes.delete("n1")
    with pytest.raises(NotFound):
        nodes.update(assigned.with_annotations({"a": "b"}), base=assigned)


def test_fields_the_node_type_does_not_model_survive_an_update(store: Store) -> None:
    """What an API client set (labels, taints, conditions) outlives the agent's and
    nodeipam's writes through this type."""
    nodes = Nodes(store)
    node = nodes.register("n1", addresses=["192.0.2.11"])
    raw = json.loads(Nodes.encode(node))
    raw["metadata"]["labels"] = {"zone": "a"}
    raw["spec"]["taints"] = [{"key": "k", "effect": "NoSchedule"}]
    raw["status"]["conditions"] = [{"type": "Ready", "status": "True"}]
    kv = store.get(nodes.key("n1"))
    assert kv is not None
    store.update(nodes.key("n1"), json.dumps(raw).encode(), revision=kv.mod_revision)
    current = nodes.require("n1")
    nodes.update(current.with_annotations({"a": "b"}).with_pod_cidrs(["10.244.1.0/24"]))
    final = nodes.require("n1").to_json()
    assert final["metadata"].get("labels") == {"zone": "a"}
    assert final["spec"].get("taints") == [{"key": "k", "effect": "NoSchedule"}]
    assert final["status"].get("conditions") == [{"type": "Ready", "status": "True"}]
    assert final["spec"]["podCIDR"] == "10.244.1.0/24"
    assert final["metadata"]["annotations"] == {"a": "b"}
