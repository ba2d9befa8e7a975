"""Kubernetes-shaped events: aggregated repeats, expiry through a lease."""

from __future__ import annotations

import pytest

from podnet.store import WARNING, EventRecorder, Store, list_events


def test_event_shape_and_aggregation(store: Store) -> None:
    recorder = EventRecorder(store, "cidrAllocator")
    first = recorder.record(
        kind="Node", name="n1", uid="u1", type=WARNING, reason="CIDRNotAvailable",
        message="Node n1 status is now: CIDRNotAvailable",
    )  # fmt: skip
    again = recorder.record(
        kind="Node", name="n1", uid="u1", type=WARNING, reason="CIDRNotAvailable",
        message="Node n1 status is now: CIDRNotAvailable",
    )  # fmt: skip
    other = recorder.record(kind="Node", name="n2", type="Normal", reason="X", message="y")
    assert again.name == first.name and again.count == 2
    assert other.name != first.name

    events = list_events(store)
    assert sorted(e.name for e in events) == sorted([first.name, other.name])
    data = next(e for e in events if e.name == first.name).to_json()
    assert data["involvedObject"] == {"apiVersion": "v1", "kind": "Node", "name": "n1", "uid": "u1"}
    assert data["type"] == "Warning"
    assert data["reason"] == "CIDRNotAvailable"
    assert data["count"] == 2
    assert data["source"] == {"component": "cidrAllocator"}
    assert data["metadata"]["namespace"] == "default"
    assert data["firstTimestamp"] <= data["lastTimestamp"]


def test_events_live_under_a_lease(store: Store) -> None:
    recorder = EventRecorder(store, "test", ttl=30)
    event = recorder.record(kind="Node", name="n1", type="Normal", reason="R", message="m")
    kv = store.get(f"/registry/events/default/{event.name}")
    assert kv is not None and kv.lease != 0
    store.revoke(kv.lease)
    assert list_events(store) == []
    # The recorder notices its lease is gone and takes a new one.
    recorder.record(kind="Node", name="n1", type="Normal", reason="R", message="m")
    assert len(list_events(store)) == 1


@pytest.mark.parametrize("namespace", ["default", "kube-system"])
def test_list_by_namespace(store: Store, namespace: str) -> None:
    EventRecorder(store, "c", namespace=namespace).record(
        kind="Node", name="n", type="Normal", reason="R", message="m"
    )
    assert len(list_events(store, namespace=namespace)) == 1
    assert len(list_events(store, namespace="other")) == 0
