"""OPS pod ADDs and DELs on a 3-node lab while the nodes' agents are killed -9 at random
moments and started again by the lab's restarter. The pods' plugins go through the agent
when it is up and run in-process while it is away. Throughout: no live pod shares an
address with another. At the end: every live pod answers pings from every node; once
every pod is removed and each node's runtime ran one GC, no reservation, veth, masquerade
element, pod namespace, scratch config or cached result is left."""

from __future__ import annotations

import os
import random
import secrets
import signal
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from podnet.cni import CNIError
from podnet.lab import (
    NODE_UNDERLAY_IF,
    RESTARTER,
    Endpoint,
    Lab,
    LabError,
    PodnetNodes,
    ping,
)
from podnet.netlink import run_in_netns
from podnet.runtime import Sandbox, SandboxError
from tests.chaos._figures import Budget, Limit, record
from tests.plugins.main._support import masq_elements, node_veths_once_settled

pytestmark = [pytest.mark.chaos, pytest.mark.root]

OPS = 1000
NODES = 3
LIVE_TARGET = 24  # pods alive at a time, about; ADDs and DELs alternate around it
# Pod operations between two agent kills, drawn uniformly: counted in operations, not
# seconds, so a quiet machine that churns fast sees as many kills as a loaded one.
KILL_EVERY_OPS = (15, 45)
BUDGET = 420.0
SEED = 4242
NETWORK = "cbr0"
# What a refused pod operation raises (the runtime undid what it did); as the lab CLI.
REFUSED = (LabError, CNIError, SandboxError, OSError)


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    name = "c" + secrets.token_hex(3)
    netns_dir = tmp_path / "netns"
    netns_dir.mkdir()
    lab = Lab(name, root=str(tmp_path / "labs"), netns_dir=str(netns_dir))
    try:
        yield lab
    finally:
        lab.down()


class AgentKiller:
    """Kills a random node's agent -9 every KILL_EVERY_OPS pod operations (the test counts
    them in `ops`), at a random moment a few milliseconds into one, until stopped."""

    def __init__(self, lab: Lab, rng: random.Random) -> None:
        self.lab = lab
        self.rng = rng
        self.kills = 0
        self.ops = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        next_kill = self.rng.randint(*KILL_EVERY_OPS)
        while not self.stop.wait(self.rng.uniform(0.001, 0.01)):
            if self.ops < next_kill:
                continue
            next_kill = self.ops + self.rng.randint(*KILL_EVERY_OPS)
            what = f"agent-{self.rng.choice(self.lab.node_names())}"
            pid = self.lab.processes.our_pid(self.lab.processes.pid_file(what))
            if pid is not None:
                os.kill(pid, signal.SIGKILL)
                self.kills += 1


def leftovers(lab: Lab) -> dict[str, list[str]]:
    """What the pods left on each node, by kind."""
    found: dict[str, list[str]] = {
        "reservations": [],
        "veths": [],
        "masquerade": [],
        "pod namespaces": [],
        "scratch": [],
        "cached results": [],
    }
    for node in lab.node_names():
        d = lab.node_dirs(node)
        data = Path(d.cni_data_dir)
        for network_dir in (data / "networks").glob("*"):
            found["reservations"] += [
                f"{node}:{p.name}"
                for p in network_dir.iterdir()
                if p.name != "lock" and not p.name.startswith("last_reserved_ip.")
            ]
        netns = lab.node(node).netns
        veths = [v for v in node_veths_once_settled(netns) if v != NODE_UNDERLAY_IF]
        found["veths"] += [f"{node}:{v}" for v in veths]
        found["masquerade"] += [f"{node}:{ip}" for ip in masq_elements(netns, NETWORK)]
        if os.path.isdir(d.netns_dir):
            found["pod namespaces"] += [f"{node}:{n}" for n in os.listdir(d.netns_dir)]
        for kind, sub in (("scratch", "flannel"), ("cached results", "results")):
            if (data / sub).is_dir():
                found[kind] += [f"{node}:{p.name}" for p in (data / sub).iterdir()]
    return found


def gc_node(lab: Lab, runtime: PodnetNodes, node: str) -> list[str]:
    """One GC by the node's runtime, as containerd runs it (every attachment it does not
    know of a live sandbox goes); the errors it reported."""
    reports = run_in_netns(lab.node(node).netns, runtime.runtime(node).gc)
    return [str(error) for report in reports for error in report.errors]


def test_pod_churn_while_agents_are_killed(lab: Lab) -> None:
    started = time.monotonic()
    rng = random.Random(SEED)
    lab.up(NODES, timeout=120)
    runtime = lab.node_runtime
    assert isinstance(runtime, PodnetNodes)
    nodes = lab.node_names()
    live: dict[str, tuple[str, Sandbox]] = {}  # pod name -> (node, sandbox)
    # Pods whose DEL failed: torn down part way (cut off, maybe released), no longer live;
    # the runtime's DEL is retried for them at the end, as kubelet retries StopPodSandbox.
    terminating: dict[str, tuple[str, Sandbox]] = {}
    counts = {"adds": 0, "dels": 0, "add_failures": 0, "del_failures": 0, "duplicates": 0}
    failures: list[str] = []
    killer = AgentKiller(lab, random.Random(SEED + 1))
    budget = Budget(BUDGET)
    ops = 0
    killer.thread.start()
    try:
        while ops < OPS and not budget.over():
            ops += 1
            killer.ops = ops
            if not live or (len(live) < LIVE_TARGET and rng.random() < 0.6) or rng.random() < 0.3:
                name, node = f"p{ops:04d}", rng.choice(nodes)
                counts["adds"] += 1
                try:
                    sandbox = runtime.run_pod(node, name, "default")
                except REFUSED as exc:
                    counts["add_failures"] += 1
                    failures.append(f"ADD {name}: {exc}")
                    continue
                if sandbox.ip in {s.ip for _, s in live.values()}:
                    counts["duplicates"] += 1
                live[name] = (node, sandbox)
            else:
                name = rng.choice(sorted(live))
                node, sandbox = live[name]
                counts["dels"] += 1
                try:
                    runtime.remove_pod(node, sandbox)
                    del live[name]
                except REFUSED as exc:
                    counts["del_failures"] += 1
                    failures.append(f"DEL {name}: {exc}")
                    terminating[name] = live.pop(name)
    finally:
        killer.stop.set()
        killer.thread.join(10)
    ops_seconds = time.monotonic() - started

    # Every agent back (the restarter may be backing off), then reachability.
    deadline = time.monotonic() + 90
    while not all(lab.agent_ready(n) for n in nodes) and time.monotonic() < deadline:
        time.sleep(0.5)
    endpoints = [Endpoint(name, n, s.netns, s.ip) for name, (n, s) in live.items()]
    probes = list({e.node: e for e in endpoints}.values())  # one pod per node
    pairs = [(probe, e) for e in endpoints for probe in probes if probe is not e]
    with ThreadPoolExecutor(8) as pool:
        answered = list(pool.map(lambda pair: ping(*pair), pairs))
    unreachable = {e.name for (_, e), ok in zip(pairs, answered, strict=True) if not ok}
    ips = [e.ip for e in endpoints]

    # Remove every pod (retrying as kubelet does), then one GC per node.
    removal_failures = 0
    for node, sandbox in [*live.values(), *terminating.values()]:
        for _ in range(5):
            try:
                runtime.remove_pod(node, sandbox)
                break
            except REFUSED:
                removal_failures += 1
                time.sleep(1)
    gc_errors = []
    for node in nodes:
        gc_errors += gc_node(lab, runtime, node)
    left = leftovers(lab)
    restarts = sum(lab.agent_status(node)[1] for node in nodes)

    figures = {
        "ops": ops,
        **counts,
        "agent_kills": killer.kills,
        "agent_restarts": restarts,
        "restarter_alive": int(lab.process_alive(RESTARTER)),
        "live_pods_at_end": len(endpoints),
        "terminating_pods_at_end": len(terminating),
        "duplicate_ips_at_end": len(ips) - len(set(ips)),
        "unreachable_live_pods": len(unreachable),
        "removal_retries": removal_failures,
        "gc_errors": len(gc_errors),
        **{f"left_{kind.replace(' ', '_')}": len(items) for kind, items in left.items()},
        "ops_seconds": round(ops_seconds, 1),
    }
    limits = {
        "ops": Limit(least=OPS),
        "duplicates": Limit(most=0),
        "duplicate_ips_at_end": Limit(most=0),
        "add_failures": Limit(most=killer.kills),  # at most the op in flight at each kill
        "agent_kills": Limit(least=10),
        "agent_restarts": Limit(least=1),
        "restarter_alive": Limit(least=1),
        "unreachable_live_pods": Limit(most=0),
        "gc_errors": Limit(most=0),
        **{f"left_{kind.replace(' ', '_')}": Limit(most=0) for kind in left},
    }
    notes = {
        "failures": failures[:10],
        "unreachable": sorted(unreachable)[:10],
        "left": {k: v[:5] for k, v in left.items() if v},
        "gc_errors": gc_errors[:5],
        "stopped_early_by_budget": budget.over(),
    }
    regressions = record("lab-churn", figures, limits, started=started, notes=notes)
    assert not regressions, regressions
