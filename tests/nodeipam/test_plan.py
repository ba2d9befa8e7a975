"""`nodeipam plan`: what a new --cluster-cidr would do to each node."""

from __future__ import annotations

from podnet.nodeipam import parse_config, plan
from podnet.store import Node


def node(name: str, *cidrs: str, created: str = "2024-01-01T00:00:00Z") -> Node:
    return Node(name=name, pod_cidrs=cidrs, creation_timestamp=created)


def test_plan_for_a_cluster_cidr_change() -> None:
    nodes = [
        node("a", "10.244.0.0/24"),
        node("b", "10.244.200.0/24"),
        node("c", "10.245.0.0/24"),
        node("d", created="2024-01-01T00:00:02Z"),
        node("e", created="2024-01-01T00:00:01Z"),
        node("f", "10.244.1.0/25"),
    ]
    entries = {e.node: e for e in plan(nodes, parse_config("10.244.0.0/17"))}
    assert entries["a"].action == "keep"
    assert entries["b"].action == "outside"
    assert "10.244.200.0/24 is outside the new cluster CIDR 10.244.0.0/17" in entries["b"].detail
    assert "delete and re-register" in entries["b"].detail
    assert entries["c"].action == "outside"
    assert entries["f"].action == "keep"
    assert "is a /25, new nodes get /24" in entries["f"].detail
    # Unassigned nodes are simulated in arrival order, after the kept blocks are taken.
    assert entries["e"] == entries["e"].__class__("e", (), "allocate", "would get 10.244.2.0/24")
    assert entries["d"].detail == "would get 10.244.3.0/24"
    assert [e.node for e in plan(nodes, parse_config("10.244.0.0/17"))] == list("abcdef")


def test_plan_shows_who_would_wait_and_service_overlaps() -> None:
    nodes = [node("a", "10.0.0.0/24"), node("b"), node("c")]
    config = parse_config("10.0.0.0/23", service_cluster_ip_range="10.0.0.0/24")
    entries = {e.node: e for e in plan(nodes, config)}
    assert entries["a"].action == "outside"
    assert "overlaps a block already taken" in entries["a"].detail
    assert entries["b"].detail == "would get 10.0.1.0/24"
    assert entries["c"].action == "wait"


def test_plan_dual_stack_node_into_single_stack() -> None:
    nodes = [node("a", "10.244.0.0/24", "fd00::/64")]
    (entry,) = plan(nodes, parse_config("10.244.0.0/16"))
    assert entry.action == "outside"
    assert "fd00::/64 is outside the new cluster CIDR (no IPv6 range)" in entry.detail
