"""Leak recovery: pods whose namespaces vanish behind the runtime's back (what a reboot
does to /var/run/netns) still hold IPs and cache entries; `podnet cni gc` frees them and
leaves running pods alone."""

from __future__ import annotations

import json
import os
from functools import partial

import pytest

from podnet.netlink import delete_netns
from podnet.runtime import READY, STOPPED, PodRun
from tests.runtime.conftest import Node
from tests.runtime.script_plugins import read_log, write_plugin

pytestmark = pytest.mark.root

LEAKED = 30
RUNNING = 3


def test_gc_frees_what_30_vanished_pods_held(node: Node) -> None:
    node.write_conflist(node.bridge(), {"type": "loopback"})
    runtime = node.runtime()

    def start_all() -> list[PodRun]:
        return [runtime.run(f"pod-{i}") for i in range(LEAKED + RUNNING)]

    runs = node.call(start_all)
    leaked, running = runs[:LEAKED], runs[LEAKED:]
    assert len(node.allocated_ips()) == LEAKED + RUNNING
    for run in leaked:
        delete_netns(run.sandbox.netns)  # behind the runtime's back
    assert len(node.cache_files()) == LEAKED + RUNNING

    done = node.cli("cni", "gc", "-o", "json")
    assert done.returncode == 0, done.stderr
    (report,) = json.loads(done.stdout)
    assert report["network"] == "podnet-test" and report["errors"] == []
    assert sorted(a["containerID"] for a in report["deleted"]) == sorted(
        r.sandbox.id for r in leaked
    )

    assert node.allocated_ips() == {r.sandbox.ip for r in running}
    assert node.cache_files() == sorted(f"podnet-test-{r.sandbox.id}-eth0" for r in running)
    for run in running:
        node.call(partial(runtime.check, run.sandbox.name))
        assert runtime.store.get("default", run.sandbox.name).state == READY
    for run in leaked:
        assert runtime.store.get("default", run.sandbox.name).state == STOPPED

    again = node.cli("cni", "gc")
    assert again.returncode == 0, again.stderr
    assert "network podnet-test: 0 stale attachment(s) deleted" in again.stdout


def test_gc_sends_the_gc_verb_with_valid_attachments(ref_node: Node) -> None:
    node = ref_node
    log = os.path.join(node.root, "calls.jsonl")
    write_plugin(node.scripts_dir, "recorder", log=log, ADD="ip:10.244.9.2/24")
    node.write_conflist({"type": "recorder"}, version="1.1.0")
    runtime = node.runtime()
    keep, lose = (node.call(partial(runtime.run, n)) for n in ("keep", "lose"))
    delete_netns(lose.sandbox.netns)

    done = node.cli("cni", "gc")
    assert done.returncode == 0, done.stderr
    assert "1 stale attachment(s) deleted, GC sent to its plugins" in done.stdout
    calls = read_log(log)
    assert [(c["command"], c["containerID"]) for c in calls[2:]] == [
        ("DEL", lose.sandbox.id),
        ("GC", ""),
    ]
    assert calls[2]["netns"] == "", "the namespace is gone: DEL goes out without one"
    valid = [{"containerID": keep.sandbox.id, "ifname": "eth0"}]
    assert calls[3]["config"]["cni.dev/valid-attachments"] == valid
    assert calls[3]["config"]["cni.dev/attachments"] == valid


def test_gc_cleans_attachments_of_a_network_no_longer_configured(ref_node: Node) -> None:
    node = ref_node
    old = node.write_conflist(node.bridge(), name="old-net", filename="10-old.conflist")
    runtime = node.runtime()
    run = node.call(lambda: runtime.run("web"))
    delete_netns(run.sandbox.netns)
    os.unlink(old)
    node.write_conflist(node.bridge(), name="new-net", filename="10-new.conflist")

    done = node.cli("cni", "gc")
    assert done.returncode == 0, done.stderr
    assert "(networks without a config): 1 stale attachment(s) deleted" in done.stdout
    assert node.allocated_ips("old-net") == set() and node.cache_files() == []
