# The client's models make every field Optional and its watch module is untyped.
# mypy: disable-error-code="union-attr,no-untyped-call,arg-type,index"
"""The official Kubernetes Python client against podnet's API server: list, watch,
patch, conflicts and the relist after a 410, as a controller uses them."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client, config, watch

from podnet.store import Nodes, open_store
from tests.apiserver.conftest import Cluster, start_cluster


def core(cluster: Cluster, who: str = "admin") -> client.CoreV1Api:
    return client.CoreV1Api(config.new_client_from_config(cluster.kubeconfigs[who]))


def new_node(name: str) -> client.V1Node:
    return client.V1Node(metadata=client.V1ObjectMeta(name=name))


def test_list_get_create_patch(any_cluster: Cluster) -> None:
    api = core(any_cluster)
    api.create_node(new_node("n1"))
    api.patch_node("n1", {"metadata": {"labels": {"zone": "a"}}})
    api.patch_node_status(
        "n1", {"status": {"conditions": [{"type": "Ready", "status": "True", "reason": "x"}]}}
    )
    nodes = api.list_node(label_selector="zone=a")
    assert [n.metadata.name for n in nodes.items] == ["n1"]
    assert int(nodes.metadata.resource_version) > 0
    read = api.read_node("n1")
    assert read.status.conditions[0].type == "Ready" and read.metadata.labels == {"zone": "a"}
    assert api.list_namespace().items[0].status.phase == "Active"
    created = api.create_namespaced_config_map(
        "default", client.V1ConfigMap(metadata=client.V1ObjectMeta(name="cm"), data={"a": "b"})
    )
    assert created.data == {"a": "b"}
    api.delete_namespaced_config_map("cm", "default")
    with pytest.raises(client.ApiException) as missing:
        api.read_namespaced_config_map("cm", "default")
    assert missing.value.status == 404


def test_replace_with_a_stale_version_conflicts(cluster: Cluster) -> None:
    api = core(cluster)
    api.create_node(new_node("n1"))
    first = api.read_node("n1")
    second = api.read_node("n1")
    first.metadata.labels = {"by": "first"}
    api.replace_node("n1", first)
    second.metadata.labels = {"by": "second"}
    with pytest.raises(client.ApiException) as conflict:
        api.replace_node("n1", second)
    assert conflict.value.status == 409 and conflict.value.reason == "Conflict"
    # Read again, apply again: the controller's retry loop.
    third = api.read_node("n1")
    third.metadata.labels = {"by": "second"}
    assert api.replace_node("n1", third).metadata.labels == {"by": "second"}


def test_watch_from_a_list(any_cluster: Cluster) -> None:
    api = core(any_cluster)
    listed = api.list_node()
    nodes = Nodes(any_cluster.store)

    def change() -> None:
        time.sleep(0.5)
        n1 = nodes.register("n1", addresses=["192.0.2.11"])
        nodes.update(n1.with_pod_cidrs(["10.244.1.0/24"]))

    writer = threading.Thread(target=change)
    writer.start()
    seen = []
    stream = watch.Watch()
    for event in stream.stream(
        api.list_node, resource_version=listed.metadata.resource_version, timeout_seconds=20
    ):
        seen.append((event["type"], event["object"].metadata.name, event["object"].spec.pod_cidr))
        if len(seen) == 2:
            stream.stop()
    writer.join()
    assert seen == [("ADDED", "n1", None), ("MODIFIED", "n1", "10.244.1.0/24")]


@pytest.fixture
def short_window(tmp_path: Path) -> Iterator[Cluster]:
    store = open_store(f"sqlite://{tmp_path}/cluster.db")
    running = start_cluster(store, tmp_path, watch_window=4)
    try:
        yield running
    finally:
        running.server.close()
        store.close()


def test_410_then_relist(short_window: Cluster) -> None:
    api = core(short_window)
    old = api.list_node().metadata.resource_version
    for i in range(12):
        api.create_node(new_node(f"n{i}"))
    deadline = time.monotonic() + 10
    while short_window.server.cache.revision < int(api.list_node().metadata.resource_version):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    with pytest.raises(client.ApiException) as expired:
        for _ in watch.Watch().stream(api.list_node, resource_version=old, timeout_seconds=10):
            pass
    assert expired.value.status == 410
    # The reflector's answer: relist, and watch from the new list's version.
    relisted = api.list_node()
    assert len(relisted.items) == 12
    stream = watch.Watch()
    api.create_node(new_node("late"))
    for event in stream.stream(
        api.list_node, resource_version=relisted.metadata.resource_version, timeout_seconds=10
    ):
        assert (event["type"], event["object"].metadata.name) == ("ADDED", "late")
        stream.stop()


def test_refusals_are_api_exceptions(cluster: Cluster) -> None:
    core(cluster).create_node(new_node("n2"))
    with pytest.raises(client.ApiException) as refused:
        core(cluster, "n1").patch_node("n2", {"metadata": {"labels": {"x": "y"}}})
    assert refused.value.status == 403
    with pytest.raises(client.ApiException) as invalid:
        core(cluster).create_node(new_node("Not_Valid"))
    assert invalid.value.status == 422
