"""Pod sandboxes end to end on a node namespace: run, check, stop, remove, with the cache,
the host-local allocations and the pod namespaces checked on disk and in the kernel."""

from __future__ import annotations

import ipaddress
import json
import os
import subprocess
from functools import partial

import pytest

from podnet.runtime import READY, STOPPED, PluginErrors, PodExists, PodNotFound
from tests.runtime.conftest import SUBNET, Node
from tests.runtime.script_plugins import read_log, write_plugin

pytestmark = pytest.mark.root


def in_pod(netns: str, *command: str) -> str:
    return subprocess.run(
        ["nsenter", f"--net={netns}", *command], capture_output=True, text=True, check=True
    ).stdout


def test_pods_run_get_ips_are_checked_and_removed(node: Node) -> None:
    node.write_conflist(node.bridge(), {"type": "loopback"})
    runtime = node.runtime()
    web, db = (node.call(partial(runtime.run, n, "shop")) for n in ("web", "db"))

    assert web.sandbox.ip != db.sandbox.ip
    for run in (web, db):
        sandbox = run.sandbox
        assert ipaddress.ip_address(sandbox.ip) in ipaddress.ip_network(SUBNET)
        assert os.path.basename(sandbox.netns).startswith("cni-")
        assert os.path.dirname(sandbox.netns) == node.netns_dir
        assert f"inet {sandbox.ip}/24" in in_pod(sandbox.netns, "ip", "-4", "-o", "addr", "show")
        assert "UP" in in_pod(sandbox.netns, "ip", "-o", "link", "show", "lo").split(">")[0]
        assert sandbox.state == READY
    assert node.allocated_ips() == {web.sandbox.ip, db.sandbox.ip}
    assert node.cache_files() == sorted(f"podnet-test-{r.sandbox.id}-eth0" for r in (web, db))
    with open(os.path.join(node.cache_dir, "results", f"podnet-test-{web.sandbox.id}-eth0")) as f:
        cached = json.load(f)
    assert cached["kind"] == "cniCacheV1" and cached["netns"] == web.sandbox.netns
    assert ["K8S_POD_NAME", "web"] in cached["cniArgs"]

    node.call(lambda: runtime.check("web", "shop"))
    # One pod's record alone is what the listing has for it.
    assert runtime.pod("web", "shop") == next(s for s in runtime.pods() if s.name == "web")
    assert runtime.pod("web", "default") is None and runtime.pod("cache", "shop") is None
    with open(runtime.store.path("shop", "db"), "w") as record:
        record.write("{not json")  # unreadable: left out, as the listing leaves it out
    assert runtime.pod("db", "shop") is None and [s.name for s in runtime.pods()] == ["web"]
    with open(runtime.store.path("shop", "db"), "w") as record:
        json.dump(db.sandbox.to_json(), record)
    assert runtime.pod("db", "shop") == db.sandbox
    with pytest.raises(PodExists):
        node.call(lambda: runtime.run("web", "shop"))

    assert node.call(lambda: runtime.remove("web", "shop"))
    assert node.allocated_ips() == {db.sandbox.ip}
    assert node.cache_files() == [f"podnet-test-{db.sandbox.id}-eth0"]
    assert not os.path.exists(web.sandbox.netns)
    assert [s.name for s in runtime.pods()] == ["db"]
    assert node.call(lambda: runtime.remove("web", "shop")) is False  # already gone: no-op
    with pytest.raises(PodNotFound):
        node.call(lambda: runtime.check("web", "shop"))

    node.call(lambda: runtime.remove("db", "shop"))
    assert node.allocated_ips() == set() and node.cache_files() == [] and node.pod_netns() == []


def test_stop_is_repeatable_and_later_dels_have_no_netns(node: Node) -> None:
    log = os.path.join(node.root, "calls.jsonl")
    write_plugin(node.scripts_dir, "recorder", log=log)
    node.write_conflist(node.bridge(), {"type": "recorder"})
    runtime = node.runtime()
    run = node.call(lambda: runtime.run("web"))

    first = node.call(lambda: runtime.stop("web"))
    assert first.state == STOPPED and not os.path.exists(run.sandbox.netns)
    assert node.allocated_ips() == set() and node.cache_files() == []
    node.call(lambda: runtime.stop("web"))
    node.call(lambda: runtime.stop("web"))

    calls = [(c["command"], c["netns"]) for c in read_log(log)]
    assert calls == [
        ("ADD", run.sandbox.netns),
        ("DEL", run.sandbox.netns),
        ("DEL", ""),
        ("DEL", ""),
    ]
    # the first DEL had the cached result; later ones have none left to give
    dels = [c for c in read_log(log) if c["command"] == "DEL"]
    assert dels[0]["config"]["prevResult"]["ips"][0]["address"].startswith(run.sandbox.ip)
    assert "prevResult" not in dels[1]["config"]

    assert node.call(lambda: runtime.remove("web"))  # after stop: only forgets the record
    assert [c["command"] for c in read_log(log)].count("DEL") == 3
    assert node.records() == []


def test_a_failing_second_plugin_does_not_keep_the_first_from_its_del(node: Node) -> None:
    write_plugin(node.scripts_dir, "faildel", DEL="fail")
    node.write_conflist(node.bridge(), {"type": "faildel"})
    runtime = node.runtime()
    run = node.call(lambda: runtime.run("web"))
    assert node.allocated_ips() == {run.sandbox.ip}

    with pytest.raises(PluginErrors) as info:
        node.call(lambda: runtime.remove("web"))
    assert str(info.value) == "plugin faildel failed (delete): faildel refuses DEL"
    assert node.allocated_ips() == set(), "bridge got its DEL and host-local released the IP"
    assert len(node.cache_files()) == 1, "kept until every plugin's DEL succeeded"
    assert runtime.store.get("default", "web").state == READY

    write_plugin(node.scripts_dir, "faildel")  # repaired
    assert node.call(lambda: runtime.remove("web"))
    assert node.cache_files() == [] and node.pod_netns() == [] and node.records() == []


def test_a_dual_stack_pod_reports_every_ip_as_containerd_does(node: Node) -> None:
    """host-local with an IPv6 range first and an IPv4 range second: the pod IP is the
    IPv4 one (containerd's selectPodIPs), the IPv6 one is an additional IP; the record,
    `podnet pod run`, `pod ls` and `pod inspect` show both."""
    bridge = node.bridge()
    ipam = bridge["ipam"]
    del ipam["subnet"]
    ipam["ranges"] = [[{"subnet": "fd00:10:244:1::/64"}], [{"subnet": SUBNET}]]
    ipam["routes"] = [{"dst": "0.0.0.0/0"}, {"dst": "::/0"}]
    node.write_conflist(bridge, {"type": "loopback"})
    runtime = node.runtime()
    run = node.call(partial(runtime.run, "web", "shop"))
    sandbox = run.sandbox
    assert ipaddress.ip_address(sandbox.ip) in ipaddress.ip_network(SUBNET)
    (extra,) = sandbox.additional_ips
    assert ipaddress.ip_address(extra) in ipaddress.ip_network("fd00:10:244:1::/64")
    assert sandbox.ips == (sandbox.ip, extra)
    assert [s.ips for s in runtime.pods()] == [sandbox.ips]  # as recorded on disk

    done = node.cli("pod", "run", "db", "--namespace", "shop", "-o", "json")
    assert done.returncode == 0, done.stderr
    db = json.loads(done.stdout)
    assert len(db["podIPs"]) == 2 and db["podIPs"][0] == db["ip"] and ":" in db["podIPs"][1]
    listed = node.cli("pod", "ls")
    assert f"{sandbox.ip},{extra}" in listed.stdout
    inspected = json.loads(node.cli("pod", "inspect", "web", "--namespace", "shop").stdout)
    assert sorted(a.split("/")[0] for a in inspected["ips"]) == sorted(sandbox.ips)
    assert inspected["sandbox"]["additional_ips"] == [extra]
    for name in ("web", "db"):
        assert node.call(partial(runtime.remove, name, "shop"))
    assert node.allocated_ips() == set()
