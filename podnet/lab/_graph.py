"""A picture of the lab as it is: read from the Node objects and from each node's kernel
(not from what the lab meant to build), drawn by graphviz.

The underlay switch and each node on it with its address; per node its podCIDR, its VTEP
(device and MAC) and cni0 with its address; every pod with its IP on cni0; and between
nodes the paths the agents programmed: a VXLAN tunnel or a host-gw route, solid when both
nodes route to each other, red and dashed when only one does (a half-programmed peer is
exactly what such a picture should make obvious).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from ipaddress import IPv4Network, IPv6Network, ip_network

from podnet.agent import BACKEND_TYPE, ROUTE_PROTO
from podnet.lab._cluster import Lab
from podnet.lab._topology import NODE_UNDERLAY_IF
from podnet.netlink import Rtnl, list_addresses, list_links, routes_with_proto

UNDERLAY = "192.0.2.0/25"
FORMATS = ("svg", "png", "pdf", "dot")


class GraphError(ValueError):
    """The picture cannot be drawn (an unknown format, no graphviz)."""


@dataclass(frozen=True)
class PodBox:
    name: str
    ip: str


@dataclass(frozen=True)
class NodeBox:
    name: str
    address: str
    pod_cidr: str
    backend: str
    vtep: str  # "flannel.1 aa:bb:..", "" without a VXLAN device
    bridge: str  # "cni0 10.244.1.1/24", "" before the first pod
    pods: tuple[PodBox, ...]


@dataclass(frozen=True)
class PeerPath:
    """`source` routes `target`'s podCIDR: through a VXLAN device or a host-gw gateway."""

    source: str
    target: str
    kind: str
    detail: str


@dataclass(frozen=True)
class Picture:
    lab: str
    nodes: tuple[NodeBox, ...]
    paths: tuple[PeerPath, ...]


def take_picture(lab: Lab) -> Picture:
    objects = {node.name: node for node in lab.nodes()}
    # the IPv4 paths: a dual-stack lab's IPv6 ones run beside them (flannel-v6.1)
    cidrs: dict[IPv4Network | IPv6Network, str] = {
        network: name
        for name, node in objects.items()
        for network in map(ip_network, node.pod_cidrs)
        if network.version == 4
    }
    pods: dict[str, list[PodBox]] = {}
    for pod in lab.pods():
        pods.setdefault(pod.node, []).append(PodBox(pod.sandbox.name, pod.sandbox.ip))
    boxes, paths = [], []
    for name in lab.node_names():
        node = objects.get(name)
        with Rtnl.open(lab.node(name).netns) as rtnl:
            vtep, vtep_index, bridge = _devices(rtnl)
            for route in routes_with_proto(rtnl, ROUTE_PROTO):
                target = cidrs.get(route.dst)
                if target is None:
                    continue
                kind = "vxlan" if route.ifindex == vtep_index else "host-gw"
                paths.append(PeerPath(name, target, kind, f"{route.dst} via {route.gateway}"))
        boxes.append(
            NodeBox(
                name=name,
                address=str(lab.node(name).ip),
                pod_cidr=node.pod_cidrs[0] if node and node.pod_cidrs else "",
                backend=(node.annotations.get(BACKEND_TYPE, "") if node else ""),
                vtep=vtep,
                bridge=bridge,
                pods=tuple(sorted(pods.get(name, []), key=lambda p: p.name)),
            )
        )
    return Picture(lab.name, tuple(boxes), tuple(paths))


def _devices(rtnl: Rtnl) -> tuple[str, int, str]:
    vtep, vtep_index, bridge = "", 0, ""
    for link in list_links(rtnl):
        if link.kind == "vxlan" and link.name.startswith("flannel."):
            vtep, vtep_index = f"{link.name} {link.mac}", link.index
        elif link.kind == "bridge" and link.name == "cni0":
            addresses = [str(a.address) for a in list_addresses(rtnl, link.index, version=4)]
            bridge = " ".join(["cni0", *addresses])
    return vtep, vtep_index, bridge


def to_dot(picture: Picture) -> str:
    """The picture as a graphviz document."""
    import graphviz  # only drawing needs it

    dot = graphviz.Graph(f"lab {picture.lab}", strict=False)
    dot.attr(rankdir="TB", fontname="Helvetica", label=f"podnet lab {picture.lab}", labelloc="t")
    dot.attr("node", fontname="Helvetica", fontsize="10", shape="box", style="rounded")
    dot.attr("edge", fontname="Helvetica", fontsize="9")
    dot.node("underlay", f"underlay switch\n{UNDERLAY}", shape="box3d")
    for node in picture.nodes:
        with dot.subgraph(name=f"cluster_{node.name}") as box:
            cidr = node.pod_cidr or "no podCIDR yet"
            box.attr(label=f"{node.name} {node.address}\npodCIDR {cidr} {node.backend}")
            box.node(f"{node.name}/eth", f"{NODE_UNDERLAY_IF} {node.address}")
            if node.vtep:
                box.node(f"{node.name}/vtep", node.vtep, shape="cds")
            box.node(f"{node.name}/cni0", node.bridge or "cni0 (not yet created)")
            for pod in node.pods:
                box.node(f"{node.name}/pod/{pod.name}", f"{pod.name}\n{pod.ip}", shape="ellipse")
                box.edge(f"{node.name}/cni0", f"{node.name}/pod/{pod.name}")
        dot.edge("underlay", f"{node.name}/eth")
    by_pair = {(p.source, p.target): p for p in picture.paths}
    vteps = {node.name for node in picture.nodes if node.vtep}
    for (source, target), path in sorted(by_pair.items()):
        both = (target, source) in by_pair
        if both and source > target:
            continue  # drawn once, from the lower name
        end = "vtep" if path.kind == "vxlan" and {source, target} <= vteps else "eth"
        label = path.kind if both else f"{path.kind}: only {source} -> {target}"
        dot.edge(
            f"{source}/{end}",
            f"{target}/{end}",
            label=label,
            color="steelblue" if both else "red",
            fontcolor="steelblue" if both else "red",
            style="solid" if both else "dashed",
            constraint="false",
        )
    return str(dot.source)


def render(picture: Picture, path: str) -> str:
    """Draw `picture` into `path`, in the format its suffix names; returns the path."""
    fmt = os.path.splitext(path)[1].lstrip(".").lower()
    if fmt not in FORMATS:
        raise GraphError(f"{path}: the format must be one of {', '.join(FORMATS)}")
    source = to_dot(picture)
    if fmt == "dot":
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(source)
        return path
    import graphviz

    try:
        data = graphviz.Source(source).pipe(format=fmt)
    except graphviz.ExecutableNotFound:
        raise GraphError(
            "graphviz's `dot` is not installed (Debian: apt install graphviz)"
        ) from None
    with open(path, "wb") as handle:
        handle.write(data)
    return path
