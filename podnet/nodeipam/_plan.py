"""What a change of --cluster-cidr (or masks, or service range) would do to each node,
before anyone restarts a controller with it. Pure: nodes and a config in, a plan out.

podCIDR is immutable, so a node whose podCIDR is not inside the new cluster CIDR keeps
it, untracked, until it is deleted and registered again; kube-controller-manager would
refuse to start at all. Nodes without a podCIDR are allocated in arrival order, the way a
freshly started controller would, to show which block each would get.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Literal

from podnet.nodeipam._cidrset import CIDRRangeFull, CIDRSet, IPNetwork
from podnet.nodeipam._config import NodeIPAMConfig
from podnet.store import Node

Action = Literal["keep", "outside", "allocate", "wait"]


@dataclass(frozen=True)
class PlanEntry:
    node: str
    pod_cidrs: tuple[str, ...]
    action: Action
    detail: str


def plan(nodes: list[Node], config: NodeIPAMConfig) -> list[PlanEntry]:
    sets = [
        CIDRSet(c, m) for c, m in zip(config.cluster_cidrs, config.node_mask_sizes, strict=True)
    ]
    for service in config.service_cidrs:
        for cidr_set in sets:
            if service.version == cidr_set.cluster_cidr.version and service.overlaps(
                cidr_set.cluster_cidr
            ):
                cidr_set.occupy(service)

    entries: dict[str, PlanEntry] = {}
    assigned = [n for n in nodes if n.pod_cidrs]
    for node in assigned:  # first occupy what is kept, as the controller would
        entries[node.name] = _judge(node, sets, config)
    unassigned = sorted(
        (n for n in nodes if not n.pod_cidrs), key=lambda n: (n.creation_timestamp, n.name)
    )
    for node in unassigned:
        entries[node.name] = _simulate_allocation(node, sets)
    return [entries[n.name] for n in sorted(nodes, key=lambda n: n.name)]


def _judge(node: Node, sets: list[CIDRSet], config: NodeIPAMConfig) -> PlanEntry:
    problems = []
    notes = []
    for text in node.pod_cidrs:
        try:
            cidr: IPNetwork = ipaddress.ip_network(text, strict=False)
        except ValueError:
            problems.append(f"{text} is not a CIDR")
            continue
        home = next((s for s in sets if s.contains(cidr)), None)
        if home is None:
            same_family = [
                str(s.cluster_cidr) for s in sets if s.cluster_cidr.version == cidr.version
            ]
            where = ",".join(same_family) or f"(no IPv{cidr.version} range)"
            problems.append(f"{text} is outside the new cluster CIDR {where}")
            continue
        if home.is_taken(cidr):
            problems.append(
                f"{text} overlaps a block already taken (service range or another node)"
            )
        home.occupy(cidr)
        if cidr.prefixlen != home.node_mask:
            notes.append(f"{text} is a /{cidr.prefixlen}, new nodes get /{home.node_mask}")
    if problems:
        return PlanEntry(
            node.name, node.pod_cidrs, "outside",
            "; ".join(problems) + ": delete and re-register the node to move it",
        )  # fmt: skip
    detail = "; ".join(notes) if notes else "inside the new cluster CIDR"
    return PlanEntry(node.name, node.pod_cidrs, "keep", detail)


def _simulate_allocation(node: Node, sets: list[CIDRSet]) -> PlanEntry:
    taken = []
    try:
        for cidr_set in sets:
            taken.append((cidr_set, cidr_set.allocate_next()))
    except CIDRRangeFull:
        for cidr_set, cidr in taken:
            cidr_set.release(cidr)
        return PlanEntry(node.name, (), "wait", "no free block: would wait (CIDRNotAvailable)")
    cidrs = ",".join(str(cidr) for _, cidr in taken)
    return PlanEntry(node.name, (), "allocate", f"would get {cidrs}")
