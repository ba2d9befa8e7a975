"""`podnet lab graph`: the picture is read from the Node objects and each node's kernel."""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from podnet.lab import GraphError, Lab, lab_namespaces, render, take_picture
from podnet.lab._graph import NodeBox, PeerPath, Picture, to_dot


def picture(paths: tuple[PeerPath, ...]) -> Picture:
    nodes = tuple(
        NodeBox(name, f"192.0.2.{10 + i}", f"10.244.{i}.0/24", "vxlan", "flannel.1 02:..", "", ())
        for i, name in enumerate(("n1", "n2"))
    )
    return Picture("t", nodes, paths)


def test_a_path_both_nodes_route_is_one_solid_edge_a_one_way_path_is_red_and_dashed() -> None:
    both = (
        PeerPath("n1", "n2", "vxlan", "10.244.1.0/24 via 10.244.1.0"),
        PeerPath("n2", "n1", "vxlan", "10.244.0.0/24 via 10.244.0.0"),
    )
    solid = to_dot(picture(both))
    assert solid.count(" -- ") == 3  # two nodes on the underlay, one tunnel
    assert '"n1/vtep" -- "n2/vtep"' in solid and "dashed" not in solid

    one_way = to_dot(picture(both[:1]))
    assert "only n1 -> n2" in one_way and "dashed" in one_way and "red" in one_way


def test_an_unknown_format_is_refused_by_name(tmp_path: Path) -> None:
    with pytest.raises(GraphError, match="must be one of svg, png, pdf, dot"):
        render(picture(()), str(tmp_path / "lab.jpg"))


@pytest.fixture
def lab() -> Iterator[Lab]:
    name = "g" + secrets.token_hex(3)
    # the default root and netns dir: `podnet lab --name NAME graph` finds it as a user's would
    lab = Lab(name)
    try:
        yield lab
    finally:
        lab.down()
        assert lab_namespaces(name) == []


@pytest.mark.root
@pytest.mark.slow
def test_the_picture_of_a_3_node_lab_shows_every_node_podcidr_vtep_and_pod_ip(
    lab: Lab, tmp_path: Path
) -> None:
    lab.up(3, progress=lambda _: None)
    ips = [lab.pod_run(f"p-{node}", node).sandbox.ip for node in lab.node_names()]
    taken = take_picture(lab)
    svg = Path(render(taken, str(tmp_path / "lab.svg"))).read_text()

    for node in lab.nodes():
        vtep = json.loads(node.annotations["flannel.alpha.coreos.com/backend-data"])
        assert f"{node.name} {lab.node(node.name).ip}" in svg
        assert f"podCIDR {node.pod_cidrs[0]} vxlan" in svg
        assert f"flannel.1 {vtep['VtepMAC']}" in svg
    for ip in ips:
        assert ip in svg
    # every agent routes to every other node: six one-way paths, three solid tunnels
    assert sorted((p.source, p.target) for p in taken.paths) == [
        (a, b) for a in ("n1", "n2", "n3") for b in ("n1", "n2", "n3") if a != b
    ]
    assert svg.count(">vxlan<") == 3

    cli = subprocess.run(
        [
            sys.executable,
            "-m",
            "podnet.cli.main",
            "lab",
            "--name",
            lab.name,
            "graph",
            "-o",
            str(tmp_path / "lab.png"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert cli.stdout == f"{tmp_path / 'lab.png'}\n", cli.stderr
    assert (tmp_path / "lab.png").read_bytes()[:4] == b"\x89PNG"
