"""The agent's GC on a node namespace made for the test: pods started through podnet's
chain (flannel -> bridge -> host-local) with the runtime library, then a runtime that
lists only some of them. What is freed, what is kept, and when GC refuses to run."""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from podnet.agent import (
    CACHED,
    RESERVATION,
    SCRATCH,
    Footprint,
    GarbageCollector,
    Gate,
    InProcessExec,
)
from podnet.agent import footprints as node_footprints
from podnet.netlink import Rtnl, create_netns, delete_netns, is_netns, list_links, run_in_netns
from podnet.plugins import (
    CONFLIST_NAME,
    default_conflist,
    install_executables,
    write_conflist,
)
from podnet.runtime import (
    CachedAttachment,
    PodRun,
    PodRuntime,
    ResultCache,
    RuntimePaths,
    scan_conf_dir,
)

pytestmark = pytest.mark.root

SUBNET_ENV = "FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.1.1/24\nFLANNEL_MTU=1450\n"
# The agent masquerades (FLANNEL_IPMASQ=true), so the bridge does not.
SUBNET_ENV += "FLANNEL_IPMASQ=true\n"
# go-cni's built-in network for every sandbox's lo, as containerd caches it.
LOOPBACK_CONFLIST = (
    b'{"cniVersion": "0.3.1", "name": "cni-loopback", "plugins": [{"type": "loopback"}]}'
)


@dataclass
class Node:
    netns: str
    root: Path

    @property
    def data_dir(self) -> str:
        return str(self.root / "cni")

    @property
    def cache_dir(self) -> str:
        return str(self.root / "cache")

    @property
    def conf_dir(self) -> str:
        return str(self.root / "net.d")

    @property
    def bin_dir(self) -> str:
        return str(self.root / "bin")

    def runtime(self) -> PodRuntime:
        paths = RuntimePaths(
            conf_dir=self.conf_dir,
            bin_dirs=(self.bin_dir,),
            cache_dir=self.cache_dir,
            netns_dir=str(self.root / "pods-netns"),
            state_dir=str(self.root / "pods"),
        )
        return PodRuntime(paths, exec_=InProcessExec(), warn=lambda _: None)

    def run_pod(self, name: str) -> PodRun:
        return run_in_netns(self.netns, lambda: self.runtime().run(name))

    def footprints(self) -> list[Footprint]:
        return node_footprints(scan_conf_dir(self.conf_dir).default(), self.cache_dir)

    def collector(
        self, listed: list[str] | None, *, grace: float = 30.0, gate: Gate | None = None
    ) -> GarbageCollector:
        def list_sandboxes() -> list[str]:
            if listed is None:
                raise ConnectionError("runtime unavailable")
            return listed

        return GarbageCollector(
            conf_dir=self.conf_dir,
            bin_dir=self.bin_dir,
            list_sandboxes=list_sandboxes,
            gate=gate if gate is not None else Gate(),
            cache_dir=self.cache_dir,
            grace=grace,
            gate_timeout=0.3,
        )


@pytest.fixture
def node(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Node]:
    """A node whose conflist is at CNI 1.1.0, or at the version given as the param."""
    version = getattr(request, "param", "1.1.0")
    node = Node(str(tmp_path / f"pn-gc-{uuid.uuid4().hex[:8]}"), tmp_path)
    install_executables(node.bin_dir)
    subnet_file = tmp_path / "subnet.env"
    subnet_file.write_text(SUBNET_ENV)
    conflist = default_conflist(version, subnet_file=str(subnet_file), data_dir=node.data_dir)
    os.makedirs(node.conf_dir)
    write_conflist(node.conf_dir, conflist)
    create_netns(node.netns)
    try:
        yield node
    finally:
        pods_netns = tmp_path / "pods-netns"
        for name in os.listdir(pods_netns) if pods_netns.is_dir() else []:
            delete_netns(str(pods_netns / name))
        delete_netns(node.netns)


def owners(items: list[Footprint]) -> set[tuple[str, str]]:
    return {(item.kind, item.container_id) for item in items}


def test_gc_frees_only_what_no_sandbox_lists_and_is_older_than_the_grace(node: Node) -> None:
    listed, forgotten, creating = (node.run_pod(n) for n in ("listed", "forgotten", "creating"))
    before = node.footprints()
    # Each pod has its reservation, flannel's saved config and the runtime's cached result.
    for run in (listed, forgotten, creating):
        assert {kind for kind, owner in owners(before) if owner == run.sandbox.id} == {
            RESERVATION,
            SCRATCH,
            CACHED,
        }
    # containerd also caches each sandbox's lo under its built-in "cni-loopback".
    loopback = {
        run.sandbox.id: ResultCache(node.cache_dir).write(
            CachedAttachment(run.sandbox.id, "lo", "cni-loopback", config=LOOPBACK_CONFLIST)
        )
        for run in (listed, forgotten, creating)
    }
    reservations = os.path.join(node.data_dir, "networks", "cbr0")
    for item in before:  # everything but the pod being created is a minute old
        if item.container_id == creating.sandbox.id:
            continue
        path = os.path.join(reservations, item.what) if item.kind == RESERVATION else item.what
        then = time.time() - 60
        os.utime(path, (then, then))

    gc = node.collector([listed.sandbox.id], grace=30)
    report = run_in_netns(node.netns, gc.run_once)

    assert not report.skipped and report.errors == []
    assert owners(report.freed) == {
        (RESERVATION, forgotten.sandbox.id),
        (SCRATCH, forgotten.sandbox.id),
        (CACHED, forgotten.sandbox.id),
    }
    assert {i.what for i in report.freed if i.kind == CACHED} == {
        ResultCache(node.cache_dir).path("cbr0", forgotten.sandbox.id, "eth0"),
        loopback[forgotten.sandbox.id],  # and its lo, which went with it
    }
    assert not os.path.exists(loopback[forgotten.sandbox.id])
    assert os.path.exists(loopback[listed.sandbox.id])
    assert os.path.exists(loopback[creating.sandbox.id])
    freed_address = next(i.what for i in report.freed if i.kind == RESERVATION)
    assert freed_address == forgotten.sandbox.ip
    assert [a.container_id for a in report.kept_recent] == [creating.sandbox.id]
    left = owners(node.footprints())
    assert left == owners(before) - owners(report.freed)
    # The cached attachment got a full DEL with its netns: the pod's eth0 is gone too.
    assert is_netns(forgotten.sandbox.netns)
    links = run_in_netns(forgotten.sandbox.netns, _link_names)
    assert "eth0" not in links
    assert gc.freed_total == 1 and gc.rounds == 1

    # Once the grace period is over, a pod no sandbox lists goes as well.
    later = node.collector([listed.sandbox.id], grace=0)
    report = run_in_netns(node.netns, later.run_once)
    assert {i.container_id for i in report.freed} == {creating.sandbox.id}
    assert owners(node.footprints()) == {
        (kind, listed.sandbox.id) for kind in (RESERVATION, SCRATCH, CACHED)
    }


@pytest.mark.parametrize("node", ["1.0.0"], indirect=True)
def test_a_config_older_than_gc_still_gets_the_verb_when_the_plugins_are_ours(
    node: Node,
) -> None:
    """containerd 1.6 reads conflists up to CNI 1.0.0, which has no GC verb; podnet's
    plugins have it at any version, so the agent sends it with the list at 1.1.0."""
    lost = node.run_pod("lost")
    # Without the runtime's cached result, only the GC verb can free the address.
    os.unlink(ResultCache(node.cache_dir).path("cbr0", lost.sandbox.id, "eth0"))
    report = run_in_netns(node.netns, node.collector([], grace=0).run_once)
    assert report.errors == []
    assert owners(report.freed) == {(RESERVATION, lost.sandbox.id), (SCRATCH, lost.sandbox.id)}
    assert node.footprints() == []


@pytest.mark.parametrize("node", ["1.0.0", "1.1.0"], indirect=True)
def test_disable_gc_in_the_conflist_turns_it_all_off(node: Node) -> None:
    path = os.path.join(node.conf_dir, CONFLIST_NAME)
    with open(path) as handle:
        conflist = json.load(handle)
    write_conflist(node.conf_dir, {**conflist, "disableGC": True})
    node.run_pod("unlisted")
    before = node.footprints()
    report = run_in_netns(node.netns, node.collector([], grace=0).run_once)
    assert report.freed == [] and report.errors == []
    assert node.footprints() == before


def test_no_gc_when_the_runtime_cannot_list_its_sandboxes(node: Node) -> None:
    node.run_pod("alone")
    before = node.footprints()
    gc = node.collector(None, grace=0)
    report = run_in_netns(node.netns, gc.run_once)
    assert "cannot list the runtime's sandboxes" in report.skipped
    assert report.freed == []
    assert node.footprints() == before


def test_a_request_stuck_in_flight_makes_gc_skip_its_round(node: Node) -> None:
    """GC waits for the gate with a deadline (issue 13): a request that never finishes
    costs one skipped round, logged, and nothing is freed under it."""
    node.run_pod("alone")
    before = node.footprints()
    gate = Gate()
    gc = node.collector([], grace=0, gate=gate)
    with gate.shared():
        report = run_in_netns(node.netns, gc.run_once)
    assert "CNI requests kept the gate busy" in report.skipped
    assert report.freed == []
    assert node.footprints() == before
    report = run_in_netns(node.netns, gc.run_once)  # the next round, gate free
    assert report.skipped == ""
    assert report.freed


def test_cache_entries_of_another_config_are_not_ours_to_delete(node: Node) -> None:
    """containerd keeps every node's results in one /var/lib/cni: an entry of the same
    network name whose config is another node's list is left alone."""
    other = CachedAttachment(
        container_id="f" * 64,
        ifname="eth0",
        network_name="cbr0",
        config=b'{"name": "cbr0", "cniVersion": "1.1.0", "plugins": [{"type": "flannel"}]}',
    )
    path = ResultCache(node.cache_dir).write(other)
    gc = node.collector([], grace=0)
    report = run_in_netns(node.netns, gc.run_once)
    assert report.errors == [] and report.freed == []
    assert os.path.exists(path)


def _link_names() -> list[str]:
    with Rtnl.open() as rtnl:
        return [link.name for link in list_links(rtnl)]
