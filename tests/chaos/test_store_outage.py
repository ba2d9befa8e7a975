"""The store killed and restarted while nodes register and the nodeipam controller hands
out podCIDRs: a 3-member etcd cluster on loopback (members killed -9 one at a time, and
once all together), and the sqlite file (every process that writes it killed -9 at random
moments: the controller, and registering clients mid-write). Meanwhile AGENTS watchers
follow the nodes in the store as the API server's watch cache does (list, watch from the
list's revision, list again when the watch breaks). Once the store is back: no podCIDR
assigned twice, every node has one, and every watcher's view is the store's."""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from podnet.store import (
    AlreadyExists,
    EtcdNotInstalled,
    LocalEtcd,
    Nodes,
    StoreError,
    StoreUnavailable,
    open_store,
)
from tests.chaos._figures import Budget, Limit, record

pytestmark = [pytest.mark.chaos]

NODES = 60
# The sqlite clients are CLI processes (~1 s each on 2 busy cores), some killed and rerun.
SQLITE_NODES = 30
AGENTS = 3
CLUSTER_CIDR = "10.244.0.0/16"
SEED = 77
BUDGET = 150.0  # per backend, for the registrations under chaos
CHAOS_SECONDS = 20.0  # registrations are spread over this long, the store dying meanwhile
DELETE_EVERY = 6  # every 6th registration also deletes an earlier node (its block is freed)
CONVERGE_WITHIN = 60.0


class Controller:
    """`podnet nodeipam run` as a process; started again whenever it is found dead."""

    def __init__(self, url: str, log: Path) -> None:
        self.url = url
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self.kills = 0

    def ensure_running(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            with open(self.log, "ab") as out:
                self.proc = subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "podnet.cli.main",
                        "nodeipam",
                        "run",
                        "--store",
                        self.url,
                        "--cluster-cidr",
                        CLUSTER_CIDR,
                        "--node-cidr-mask-size",
                        "24",
                    ],
                    stdout=out,
                    stderr=out,
                )
            self.starts += 1

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()
            self.kills += 1

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class AgentView:
    """The nodes' podCIDRs as an agent follows them; `reassigned` counts a node whose
    podCIDR changed from one block to another (never allowed)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.view: dict[str, tuple[str, ...]] = {}
        self.reassigned: set[str] = set()
        self.relists = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _see(self, name: str, cidrs: tuple[str, ...] | None) -> None:
        old = self.view.get(name)
        if cidrs is None:
            self.view.pop(name, None)
            return
        if old and cidrs and old != cidrs:
            self.reassigned.add(name)
        self.view[name] = cidrs

    def _run(self) -> None:
        store = open_store(self.url)
        source = Nodes(store)
        try:
            while not self.stop.is_set():
                try:
                    nodes, revision = source.list()
                    watch = store.watch(source.prefix, from_revision=revision + 1)
                except StoreError:
                    self.stop.wait(0.2)
                    continue
                self.relists += 1
                fresh = {n.name: tuple(n.pod_cidrs) for n in nodes}
                for name in set(self.view) - set(fresh):
                    self._see(name, None)
                for name, cidrs in fresh.items():
                    self._see(name, cidrs)
                try:
                    while not self.stop.is_set():
                        for event in watch.get(0.2):
                            change = source.change(event)
                            node = change.node
                            self._see(change.name, tuple(node.pod_cidrs) if node else None)
                except StoreError:
                    pass  # the watch broke: list again, as the agent does
                finally:
                    watch.close()
        finally:
            store.close()


def churn(names: list[str]) -> list[tuple[str, str]]:
    """The registrations, and now and then the deletion of an earlier node: (verb, name)."""
    plan = []
    for i, name in enumerate(names):
        plan.append(("register", name))
        if i % DELETE_EVERY == DELETE_EVERY - 1:
            plan.append(("delete", names[i - 3]))
    return plan


def registered(plan: list[tuple[str, str]]) -> list[str]:
    deleted = {name for verb, name in plan if verb == "delete"}
    return [name for verb, name in plan if verb == "register" and name not in deleted]


def apply_with_retries(url: str, plan: list[tuple[str, str]], budget: Budget) -> None:
    """Register and delete as kubelets and an operator do, paced over CHAOS_SECONDS:
    each again until it is done (AlreadyExists, or a delete finding nothing, after a
    retry means the earlier attempt went through)."""
    store = open_store(url)
    nodes = Nodes(store)
    pace = CHAOS_SECONDS / len(plan)
    try:
        for verb, name in plan:
            time.sleep(pace)
            while not budget.over():
                try:
                    if verb == "register":
                        nodes.register(name, addresses=["192.0.2.10"])
                    else:
                        nodes.delete(name)
                    break
                except AlreadyExists:
                    break
                except StoreUnavailable:
                    time.sleep(0.1)
    finally:
        store.close()


def run_cli(url: str, verb: str, name: str, kill_after: float | None) -> tuple[int, bytes]:
    """`podnet node register|delete NAME` as a process, SIGKILLed after `kill_after` s."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "podnet.cli.main", "node", verb, name, "--store", url],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        _, err = proc.communicate(timeout=kill_after)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
    return proc.returncode, err


@pytest.fixture
def etcd_cluster(tmp_path: Path) -> Iterator[LocalEtcd]:
    try:
        LocalEtcd.binary()
    except EtcdNotInstalled as exc:
        pytest.skip(str(exc))
    cluster = LocalEtcd(3, base_dir=tmp_path / "etcd").start()
    try:
        yield cluster
    finally:
        cluster.stop()


def etcd_chaos(cluster: LocalEtcd, stop: threading.Event, rng: random.Random) -> dict[str, int]:
    """Kill -9 members (the leader half the time) and start them again; once, all three."""
    kills = {"member_kills": 0, "full_outages": 0}
    rounds = 0
    while not stop.wait(rng.uniform(0.5, 1.5)):
        rounds += 1
        if rounds == 4:
            for index in range(3):
                cluster.kill(index)
            kills["full_outages"] += 1
            time.sleep(2.0)
            for index in range(3):
                cluster.restart(index)
            continue
        try:
            victim = cluster.leader() if rng.random() < 0.5 else rng.randrange(3)
        except StoreError:
            victim = rng.randrange(3)
        cluster.kill(victim)
        kills["member_kills"] += 1
        time.sleep(rng.uniform(0.3, 1.0))
        cluster.restart(victim)
    return kills


def converge(url: str, names: list[str], views: list[AgentView]) -> dict[str, float]:
    """Wait (bounded) for every node to have a podCIDR and every view to match the store;
    the figures of what is still wrong at the end."""
    store = open_store(url)
    deadline = time.monotonic() + CONVERGE_WITHIN
    started = time.monotonic()
    try:
        while True:
            try:
                listed, _ = Nodes(store).list()
            except StoreUnavailable:
                listed = []
            truth = {n.name: tuple(n.pod_cidrs) for n in listed}
            missing = [n for n in names if n in truth and not truth[n]]
            mismatched = [v for v in views if v.view != truth]
            if (not missing and not mismatched) or time.monotonic() > deadline:
                break
            time.sleep(0.2)
    finally:
        store.close()
    blocks = [c for cidrs in truth.values() for c in cidrs]
    return {
        "nodes_not_registered": len([n for n in names if n not in truth]),
        "nodes_not_deleted": len(set(truth) - set(names)),
        "nodes_without_podcidr": len(missing),
        "podcidrs_assigned_twice": len(blocks) - len(set(blocks)),
        "podcidrs_reassigned": sum(len(v.reassigned) for v in views),
        "agent_views_not_matching_store": len(mismatched),
        "seconds_to_converge": round(time.monotonic() - started, 1),
    }


LIMITS = {
    "nodes_not_registered": Limit(most=0),
    "nodes_not_deleted": Limit(most=0),
    "nodes_without_podcidr": Limit(most=0),
    "podcidrs_assigned_twice": Limit(most=0),
    "podcidrs_reassigned": Limit(most=0),
    "agent_views_not_matching_store": Limit(most=0),
    "seconds_to_converge": Limit(most=CONVERGE_WITHIN),
}


def test_etcd_cluster_killed_during_registrations(etcd_cluster: LocalEtcd, tmp_path: Path) -> None:
    started = time.monotonic()
    rng = random.Random(SEED)
    url = etcd_cluster.url
    controller = Controller(url, tmp_path / "nodeipam.log")
    controller.ensure_running()
    views = [AgentView(url) for _ in range(AGENTS)]
    stop = threading.Event()
    chaos_result: dict[str, int] = {}

    def chaos() -> None:
        chaos_result.update(etcd_chaos(etcd_cluster, stop, rng))

    chaos_thread = threading.Thread(target=chaos, daemon=True)
    budget = Budget(BUDGET)
    plan = churn([f"node{i:03d}" for i in range(NODES)])
    names = registered(plan)
    try:
        chaos_thread.start()
        with ThreadPoolExecutor(1) as pool:
            done = pool.submit(apply_with_retries, url, plan, budget)
            while not done.done():
                controller.ensure_running()  # a Deployment restarts it if it exits
                time.sleep(0.2)
            done.result()
        stop.set()
        chaos_thread.join(30)
        for index in range(3):  # everything back up
            if not etcd_cluster.running(index):
                etcd_cluster.restart(index)
        controller.ensure_running()
        figures = converge(url, names, views)
    finally:
        stop.set()
        for view in views:
            view.stop.set()
        controller.stop()
    figures.update(chaos_result)
    figures["controller_starts"] = controller.starts
    figures["agent_relists"] = sum(v.relists for v in views)
    regressions = record("store-outage-etcd", figures, LIMITS, started=started)
    assert not regressions, regressions


def test_sqlite_writers_killed_during_registrations(tmp_path: Path) -> None:
    started = time.monotonic()
    rng = random.Random(SEED)
    url = f"sqlite://{tmp_path}/cluster.db"
    open_store(url).close()
    controller = Controller(url, tmp_path / "nodeipam.log")
    controller.ensure_running()
    views = [AgentView(url) for _ in range(AGENTS)]
    budget = Budget(BUDGET)
    plan = churn([f"node{i:03d}" for i in range(SQLITE_NODES)])
    names = registered(plan)
    client_kills = 0
    lock = threading.Lock()
    stop = threading.Event()

    def kill_controller_now_and_then() -> None:
        while not stop.wait(rng.uniform(1.0, 3.0)):
            controller.kill()
            controller.ensure_running()

    def apply(step: tuple[str, str]) -> None:
        nonlocal client_kills
        verb, name = step
        kills = random.Random(f"{verb} {name}")
        while not budget.over():
            kill_after = kills.uniform(0.05, 0.8) if kills.random() < 0.3 else None
            code, err = run_cli(url, verb, name, kill_after)
            if code == -signal.SIGKILL:
                with lock:
                    client_kills += 1
                continue  # killed: again, as a kubelet (or an operator) would
            if code == 0 or b"already exists" in err or b"not found" in err:
                return  # done now, or by an earlier attempt that went through
            time.sleep(0.1)  # the store refused (busy): again

    killer = threading.Thread(target=kill_controller_now_and_then, daemon=True)
    try:
        killer.start()
        for step in plan:  # in order: a delete follows its node's registration
            apply(step)
        stop.set()
        killer.join(10)
        controller.ensure_running()
        figures = converge(url, names, views)
    finally:
        stop.set()
        for view in views:
            view.stop.set()
        controller.stop()
    figures["controller_kills"] = controller.kills
    figures["client_kills"] = client_kills
    figures["agent_relists"] = sum(v.relists for v in views)
    regressions = record("store-outage-sqlite", figures, LIMITS, started=started)
    assert not regressions, regressions
