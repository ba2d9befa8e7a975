"""`podnet lab trace POD` on a real lab: the ADD and DEL of a pod, hop by hop, as the node's
agent served them, and the agent's Prometheus metrics for the same requests."""

from __future__ import annotations

import http.client
import json
import secrets
import subprocess
import sys
from collections.abc import Iterator

import pytest
from prometheus_client.parser import text_string_to_metric_families

from podnet.lab import Lab, lab_namespaces
from podnet.netlink import run_in_netns

pytestmark = [pytest.mark.root, pytest.mark.slow]


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    name = "r" + secrets.token_hex(3)
    lab = Lab(name)  # the default root: `podnet lab --name NAME trace` finds it
    try:
        lab.up(2, progress=lambda _: None)
        yield lab
    finally:
        lab.down()
        assert lab_namespaces(name) == []


def lab_trace(lab: Lab, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "podnet.cli.main", "lab", "--name", lab.name, "trace", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


def scrape(lab: Lab, node: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    def get() -> str:
        conn = http.client.HTTPConnection("127.0.0.1", 9090, timeout=5)
        try:
            conn.request("GET", "/metrics")
            return conn.getresponse().read().decode()
        finally:
            conn.close()

    text: str = run_in_netns(lab.node(node).netns, get)
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_a_pods_add_and_del_are_traced_through_every_hop(lab: Lab) -> None:
    ip = lab.pod_run("web", "n1").sandbox.ip
    added = lab_trace(lab, "web", "-o", "json")
    assert added.returncode == 0, added.stderr
    # one request per plugin of the conflist: flannel's chain, then portmap
    add, portmap = json.loads(added.stdout)["traces"]
    assert [t["plugin"] for t in (add, portmap)] == ["flannel", "portmap"]
    assert add["containerId"] == portmap["containerId"]
    assert (add["pod"], add["verb"], add["code"]) == ("default/web", "ADD", 0)
    hops = [(s["plugin"], s["depth"]) for s in add["spans"]]
    assert hops == [("flannel", 0), ("bridge", 1), ("host-local", 2)]
    host_local = add["spans"][2]
    assert host_local["result"]["ips"] == [f"{ip}/24"]
    assert any(i.endswith("@pod") or "@pod " in i for i in add["spans"][1]["result"]["interfaces"])

    lab.pod_rm("web")
    text = lab_trace(lab, "web")  # the pod is gone: every node is asked
    assert text.returncode == 0, text.stderr
    assert "default/web ADD" in text.stdout and "default/web DEL" in text.stdout
    assert "host-local DEL" in text.stdout

    samples = scrape(lab, "n1")
    count = "podnet_cni_request_duration_seconds_count"
    for plugin in ("flannel", "bridge", "host-local"):
        for verb in ("ADD", "DEL"):
            assert samples[(count, (("plugin", plugin), ("verb", verb)))] >= 1


def test_an_unknown_pod_is_one_line_and_a_non_zero_exit(lab: Lab) -> None:
    done = lab_trace(lab, "nosuch")
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        "podnet trace: the agent has no trace of pod default/nosuch "
        "(it keeps the last 512 requests since it started)"
    ]
