"""podnet's API server under load, measured as a client sees it (HTTPS, bearer token,
keep-alive), on the store backends asked for.

- list: GET /api/v1/nodes with N nodes stored as the agent and nodeipam write them
  (annotations, podCIDR, an address); time from request to the last byte, p50 and p99;
  once read from the store (resourceVersion unset, what kubectl asks) and once from the
  watch cache (resourceVersion=0, what an informer's first list asks).
- watch fan-out: W clients watch nodes (resourceVersion from a list); one node is
  patched; time from the PATCH being sent to each watcher reading the event, p50 and p99
  over every (change, watcher) pair.

- pod start (root; --pods N > 0): a 2-node lab (`podnet lab up`, podnet's runtime) and
  N pods at each concurrency C of --pod-concurrency (C clients, each starting its next
  pod once the last one has its IP), three ways, taken in turn --pod-rounds times (N /
  rounds pods each time, so that a load that comes and goes on a shared machine falls on
  all three), after one warm-up pod each:
  "sandbox": the node runtime's run_pod itself, without the API (what the driver calls),
  each node's pods started by a process of its own, as each node's driver starts them;
  "api": a Pod with spec.nodeName POSTed, until a watch on the pods shows its
  status.podIP (the node's sandbox driver started it and wrote the status); "api,
  scheduled": the same without spec.nodeName, through the lab's scheduler. The API
  overhead is the difference of the p50s. Each of the C clients keeps one connection
  for its pods, as a controller creating pods does (its TLS handshake is made before the
  round: a new connection per pod is the client's start-up, not the pod's). Pods are
  deleted (and their sandboxes stopped) between rounds. Beside the times: the CPU per
  pod the sandboxes took, and the CPU per pod the API server, the drivers (sandboxes
  included) and the scheduler spent while the pods started.

    .venv/bin/python -m bench.apiserver [--nodes 5000] [--watchers 100] [--changes 20]
                                        [--lists 30] [--backends sqlite,etcd]
                                        [--pods 40 --pod-concurrency 1,8 --pod-rounds 2]

Results: bench/results/apiserver.json, and a line per backend on stderr.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import queue
import re
import secrets
import ssl
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

from podnet.apiserver import MASTERS, APIServer, Tokens, ensure_serving_certs, write_token_file
from podnet.store import EtcdNotInstalled, LocalEtcd, Store, open_store

RESULTS = Path(__file__).parent / "results" / "apiserver.json"
BACKEND_DATA = '{"VNI":1,"VtepMAC":"aa:bb:cc:00:11:22"}'


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(p / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]


def fill(store: Store, nodes: int) -> None:
    for i in range(nodes):
        name = f"node-{i:05d}"
        cidr = f"10.{i // 256}.{i % 256}.0/24"
        node: dict[str, Any] = {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {
                "name": name,
                "uid": f"uid-{i}",
                "creationTimestamp": "2026-01-01T00:00:00Z",
                "annotations": {
                    "flannel.alpha.coreos.com/backend-data": BACKEND_DATA,
                    "flannel.alpha.coreos.com/backend-type": "vxlan",
                    "flannel.alpha.coreos.com/kube-subnet-manager": "true",
                    "flannel.alpha.coreos.com/public-ip": f"192.0.2.{i % 250 + 2}",
                },
            },
            "spec": {"podCIDR": cidr, "podCIDRs": [cidr]},
            "status": {"addresses": [{"type": "InternalIP", "address": f"192.0.2.{i % 250 + 2}"}]},
        }
        store.create(f"/registry/minions/{name}", json.dumps(node, separators=(",", ":")).encode())


class Watcher(threading.Thread):
    def __init__(self, url: str, verify: ssl.SSLContext, token: str, rv: str) -> None:
        super().__init__(daemon=True)
        self.client = httpx.Client(
            base_url=url, verify=verify, headers={"Authorization": f"Bearer {token}"}, timeout=120
        )
        self.rv = rv
        self.seen: dict[str, float] = {}  # label value -> when it arrived
        self.ready = threading.Event()

    def run(self) -> None:
        params = {"watch": "true", "resourceVersion": self.rv, "timeoutSeconds": "600"}
        try:
            with self.client.stream("GET", "/api/v1/nodes", params=params) as response:
                self.ready.set()
                for line in response.iter_lines():
                    if not line:
                        continue
                    event = json.loads(line)
                    labels = event["object"]["metadata"].get("labels") or {}
                    if "bench" in labels:
                        self.seen.setdefault(labels["bench"], time.perf_counter())
        except httpx.HTTPError:
            pass
        finally:
            self.ready.set()


def run_backend(url: str, args: argparse.Namespace, work: Path) -> dict[str, Any]:
    store = open_store(url)
    fill(store, args.nodes)
    pki = ensure_serving_certs(str(work / "pki"), ["127.0.0.1"])
    token = secrets.token_hex(16)
    write_token_file(str(work / "tokens.csv"), [(token, "admin", "admin", (MASTERS,))])
    server = APIServer(store, tokens=Tokens.load(str(work / "tokens.csv")), serving=pki)
    host, port = server.listen("127.0.0.1", 0)
    base = f"https://{host}:{port}"
    verify = ssl.create_default_context(cafile=pki.ca_cert)
    headers = {"Authorization": f"Bearer {token}"}
    watchers: list[Watcher] = []
    try:
        with httpx.Client(base_url=base, verify=verify, headers=headers, timeout=120) as client:
            lists: list[float] = []
            cached: list[float] = []
            size = 0
            for _ in range(args.lists):
                for params, times in (({}, lists), ({"resourceVersion": "0"}, cached)):
                    started = time.perf_counter()
                    response = client.get("/api/v1/nodes", params=params)
                    times.append(time.perf_counter() - started)
                    assert response.status_code == 200
                size = len(response.content)
            assert len(response.json()["items"]) == args.nodes
            rv = response.json()["metadata"]["resourceVersion"]
            watchers = [Watcher(base, verify, token, rv) for _ in range(args.watchers)]
            for watcher in watchers:
                watcher.start()
            for watcher in watchers:
                watcher.ready.wait(60)
            time.sleep(0.5)
            sent: dict[str, float] = {}
            merge = {"Content-Type": "application/merge-patch+json"}
            for change in range(args.changes):
                label = str(change)
                patch = {"metadata": {"labels": {"bench": label}}}
                sent[label] = time.perf_counter()
                client.patch(
                    "/api/v1/nodes/node-00000", json=patch, headers=merge
                ).raise_for_status()
                deadline = time.monotonic() + 30
                while any(label not in w.seen for w in watchers) and time.monotonic() < deadline:
                    time.sleep(0.002)
            delays = [
                w.seen[label] - sent[label] for w in watchers for label in sent if label in w.seen
            ]
            missed = len(watchers) * len(sent) - len(delays)
    finally:
        server.close()
        for watcher in watchers:
            watcher.client.close()
        store.close()
    return {
        "nodes": args.nodes,
        "list_bytes": size,
        "list_ms": {
            "p50": round(statistics.median(lists) * 1000, 1),
            "p99": round(percentile(lists, 99) * 1000, 1),
        },
        "list_from_watch_cache_ms": {
            "p50": round(statistics.median(cached) * 1000, 1),
            "p99": round(percentile(cached, 99) * 1000, 1),
        },
        "watchers": args.watchers,
        "changes": args.changes,
        "watch_delivery_ms": {
            "p50": round(statistics.median(delays) * 1000, 1) if delays else None,
            "p99": round(percentile(delays, 99) * 1000, 1) if delays else None,
        },
        "missed_deliveries": missed,
    }


def _ms(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"p50": None, "p99": None}
    return {
        "p50": round(statistics.median(values) * 1000, 1),
        "p99": round(percentile(values, 99) * 1000, 1),
    }


class PodWatcher(threading.Thread):
    """Watches every pod of a namespace; notes when each first shows a status.podIP.

    A client waits for its own pod's IP only (`wait_seen`): with one condition for all,
    every pod seen woke all the clients waiting for theirs, in the bench's one process,
    while the pods they measure are starting."""

    def __init__(self, api: Any, namespace: str) -> None:
        super().__init__(daemon=True)
        self.api, self.namespace = api, namespace
        self.seen: dict[str, float] = {}
        self._arrived: dict[str, threading.Event] = {}
        self._lock = threading.Lock()
        self.ready = threading.Event()
        self.stopped = False

    def _arrival(self, name: str) -> threading.Event:
        with self._lock:
            return self._arrived.setdefault(name, threading.Event())

    def wait_seen(self, name: str, timeout: float) -> bool:
        """Until the pod has shown its IP (True), or `timeout` seconds (False)."""
        return self._arrival(name).wait(timeout)

    def run(self) -> None:
        version = ""
        while not self.stopped:
            try:
                pod = None
                for _kind, pod in self.api.watch_pod_list(self.namespace, version, 5.0, self.ready):
                    version = pod["metadata"].get("resourceVersion", version)
                    name = pod["metadata"].get("name")
                    if (pod.get("status") or {}).get("podIP") and name not in self.seen:
                        self.seen[name] = time.perf_counter()
                        self._arrival(name).set()
            except Exception:  # a timeout of the stream: watch again from where it was
                if self.stopped:
                    return


NODES = ("n1", "n2")


def _sandbox_node(
    lab_where: tuple[str, str, str], node: str, names: list[str], concurrency: int, start_at: float
) -> tuple[list[float], float]:
    """One node's share of a sandbox round, in a process of its own as its driver runs
    them; the times, and the CPU seconds this process spent."""
    from podnet.lab import Lab

    name, root, netns_dir = lab_where
    node_runtime = Lab(name, root=root, netns_dir=netns_dir).node_runtime

    def start(pod: str) -> float:
        started = time.perf_counter()
        node_runtime.run_pod(node, pod, "default")
        return time.perf_counter() - started

    if start_at:  # a fresh process: one pod first, not counted (a driver is warm)
        node_runtime.remove_pod(node, node_runtime.run_pod(node, f"warm-{names[0]}", "default"))
    time.sleep(max(0.0, start_at - time.time()))  # both nodes start together
    before = os.times()
    with ThreadPoolExecutor(concurrency) as pool:
        times = list(pool.map(start, names))
    after = os.times()
    return times, after.user + after.system - before.user - before.system


def _sandbox_round(
    lab: Any, lab_where: tuple[str, str, str], names: list[str], concurrency: int
) -> tuple[list[float], float]:
    """The node runtime's run_pod, as the drivers call it, without the API: pods spread
    over the two nodes, each node's started by a process of its own with its share of
    the concurrency (one process for both would make the sandboxes queue for one GIL,
    which the drivers do not; at concurrency 1, one pod after the other in this process).
    The times, and the CPU ms per pod that took (what the drivers spend on sandboxes)."""
    if concurrency == 1:
        results = [_sandbox_node(lab_where, NODES[i % 2], [n], 1, 0.0) for i, n in enumerate(names)]
    else:
        context = multiprocessing.get_context("spawn")  # this process has threads
        start_at = time.time() + 5.0  # after both have started and warmed up
        with ProcessPoolExecutor(len(NODES), mp_context=context) as pool:
            shares = [
                pool.submit(
                    _sandbox_node,
                    lab_where,
                    node,
                    names[i :: len(NODES)],
                    max(1, concurrency // len(NODES)),
                    start_at,
                )  # fmt: skip
                for i, node in enumerate(NODES)
            ]
            results = [share.result() for share in shares]
    times = [t for share_times, _cpu in results for t in share_times]
    cpu = sum(cpu for _times, cpu in results) * 1000 / len(names)
    node_runtime = lab.node_runtime
    for pod in lab.pods():
        node_runtime.remove_pod(pod.node, pod.sandbox)
    return times, round(cpu, 1)


def _daemon_cpu(lab: Any) -> dict[str, float]:
    """CPU seconds (user + system) each of the lab's daemons has used so far."""
    ticks = os.sysconf("SC_CLK_TCK")
    used: dict[str, float] = {}
    for pid_file in lab.processes.pid_files():
        pid = lab.processes.our_pid(pid_file)
        try:
            with open(f"/proc/{pid}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        used[Path(pid_file).stem] = (int(fields[11]) + int(fields[12])) / ticks
    return used


_STARTED = re.compile(r": started (\S+) with .+ in ([\d.]+) ms$")


def _sandbox_seconds(lab: Any) -> dict[str, float]:
    """How long each pod's sandbox took in its driver (namespace/name -> seconds), from
    the drivers' logs."""
    took: dict[str, float] = {}
    for node in NODES:
        try:
            with open(lab.log_path(f"driver-{node}")) as log:
                for line in log:
                    found = _STARTED.search(line)
                    if found:
                        took[found[1]] = float(found[2]) / 1000
        except OSError:
            continue
    return took


def _api_round(
    lab: Any, watcher: PodWatcher, names: list[str], concurrency: int, *, bound: bool
) -> tuple[list[float], list[float], int, dict[str, float]]:
    """Pods POSTed (bound to a node, or left to the scheduler), `concurrency` in flight:
    each client creates one and waits until the watch shows its status.podIP before the
    next. Returns the times; each pod's time less its sandbox's own (as its driver
    timed it): the API's part; how many never got an IP (60 s each); and the CPU ms per
    pod of the API server, the drivers (together) and the scheduler meanwhile."""
    sent: dict[str, float] = {}
    clients: queue.Queue[Any] = queue.Queue()
    for _ in range(concurrency):
        client = lab.api()
        client.client.get("/version").raise_for_status()  # connected: handshake made
        clients.put(client)

    def create(i: int) -> None:
        name = names[i]
        own = clients.get()
        try:
            sent[name] = time.perf_counter()
            own.create_pod(name, "default", NODES[i % 2] if bound else None)
        finally:
            clients.put(own)
        watcher.wait_seen(name, timeout=60)

    before = _daemon_cpu(lab)
    try:
        with ThreadPoolExecutor(concurrency) as pool:
            list(pool.map(create, range(len(names))))
    finally:
        while not clients.empty():
            clients.get().close()
    after = _daemon_cpu(lab)
    cpu: dict[str, float] = {}
    for daemon, used in after.items():
        who = "drivers" if daemon.startswith("driver-") else daemon
        if who in ("apiserver", "drivers", "scheduler") and daemon in before:
            cpu[who] = cpu.get(who, 0.0) + (used - before[daemon]) * 1000 / len(names)
    times = [watcher.seen[n] - sent[n] for n in sent if n in watcher.seen]
    sandbox = _sandbox_seconds(lab)
    api_part = [
        watcher.seen[n] - sent[n] - sandbox[f"default/{n}"]
        for n in sent
        if n in watcher.seen and f"default/{n}" in sandbox
    ]
    for name in sent:
        lab.pod_rm(name, "default")
    cpu_ms = {k: round(v, 1) for k, v in sorted(cpu.items())}
    return times, api_part, len(sent) - len(times), cpu_ms


def _pod_rows(
    lab: Any,
    where: tuple[str, str, str],
    watcher: PodWatcher,
    concurrency: int,
    pods: int,
    rounds: int,
) -> dict[str, Any]:
    """The three ways at one concurrency, taken in turn `rounds` times (pods / rounds
    each time), so that a load that comes and goes on the machine falls on all three."""
    times: dict[str, list[float]] = {"sandbox": [], "api": [], "api_scheduled": []}
    api_part: dict[str, list[float]] = {"api": [], "api_scheduled": []}
    cpu: dict[str, list[Any]] = {"sandbox": [], "api": [], "api_scheduled": []}
    missed = {"api": 0, "api_scheduled": 0}
    share = max(1, pods // rounds)
    for turn in range(rounds):
        names = [f"c{concurrency}-{turn}-{i}" for i in range(share)]
        took, used = _sandbox_round(lab, where, [f"{n}-s" for n in names], concurrency)
        times["sandbox"] += took
        cpu["sandbox"].append(used)
        for label, bound, suffix in (("api", True, "b"), ("api_scheduled", False, "u")):
            took, part, lost, spent = _api_round(
                lab, watcher, [f"{n}-{suffix}" for n in names], concurrency, bound=bound
            )
            times[label] += took
            api_part[label] += part
            missed[label] += lost
            cpu[label].append(spent)
    row: dict[str, Any] = {"rounds": rounds, "pods": share * rounds}
    row["sandbox_ms"] = _ms(times["sandbox"])
    row["sandbox_cpu_ms_per_pod"] = round(statistics.mean(cpu["sandbox"]), 1)
    for label in ("api", "api_scheduled"):
        row[f"{label}_ms"], row[f"{label}_missed"] = _ms(times[label]), missed[label]
        row[f"{label}_cpu_ms_per_pod"] = {
            who: round(statistics.mean(spent[who] for spent in cpu[label]), 1)
            for who in cpu[label][0]
        }
    api_p50, sandbox_p50 = row["api_ms"]["p50"], row["sandbox_ms"]["p50"]
    row["api_overhead_p50_ms"] = (
        round(api_p50 - sandbox_p50, 1) if None not in (api_p50, sandbox_p50) else None
    )
    # Per pod: its start through the API less its own sandbox's time. At concurrency
    # above 1 the difference of the p50s above is not the API's part: a pod spends part
    # of its start in the API, so fewer sandboxes run at once than in the sandbox round,
    # and each waits less behind the others (the difference can even come out negative).
    for label in ("api", "api_scheduled"):
        row[f"{label}_part_per_pod_ms"] = _ms(api_part[label])
    return row


def run_pod_start(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    from podnet.lab import Lab

    netns_dir = work / "netns"
    netns_dir.mkdir()
    lab = Lab("b" + secrets.token_hex(3), root=str(work / "labs"), netns_dir=str(netns_dir))
    results: dict[str, Any] = {"pods": args.pods, "nodes": len(NODES), "runtime": "podnet"}
    try:
        lab.up(len(NODES))
        with lab.api() as api:
            watcher = PodWatcher(api, "default")
            watcher.start()
            watcher.ready.wait(30)
            # One pod each way first, not counted: the drivers' and scheduler's first
            # requests (connections, the client's lazy imports) are not a pod start's cost.
            where = (lab.name, str(work / "labs"), str(netns_dir))
            _sandbox_round(lab, where, ["warm-s0", "warm-s1"], 1)
            _api_round(lab, watcher, ["warm-b0", "warm-b1"], 1, bound=True)
            _api_round(lab, watcher, ["warm-u0", "warm-u1"], 1, bound=False)
            for concurrency in [int(c) for c in args.pod_concurrency.split(",")]:
                row = _pod_rows(lab, where, watcher, concurrency, args.pods, args.pod_rounds)
                results[f"concurrency_{concurrency}"] = row
                print(f"pod start c{concurrency}: {json.dumps(row)}", file=sys.stderr)
            watcher.stopped = True
    finally:
        lab.down()
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.apiserver", description=__doc__)
    parser.add_argument("--nodes", type=int, default=5000)
    parser.add_argument("--watchers", type=int, default=100)
    parser.add_argument("--changes", type=int, default=20)
    parser.add_argument("--lists", type=int, default=30)
    parser.add_argument("--backends", default="sqlite")
    parser.add_argument("--pods", type=int, default=0, help="pods per round (0: no pod bench)")
    parser.add_argument("--pod-concurrency", default="1,8")
    parser.add_argument(
        "--pod-rounds", type=int, default=2, help="the three ways taken in turn this often"
    )
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    # What this run does not measure stays as the last run wrote it (each part has its date).
    try:
        results: dict[str, Any] = json.loads(args.output.read_text())
    except (OSError, ValueError):
        results = {}
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    results["machine"] = (
        f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"
    )
    results.setdefault("backends", {})
    if [b for b in args.backends.split(",") if b]:
        results["date"] = stamp
    for backend in [b for b in args.backends.split(",") if b]:
        with tempfile.TemporaryDirectory(prefix="podnet-bench-apiserver-") as tmp:
            work = Path(tmp)
            if backend == "sqlite":
                outcome = run_backend(f"sqlite://{work}/cluster.db", args, work)
            elif backend == "etcd":
                try:
                    LocalEtcd.binary()
                except EtcdNotInstalled as exc:
                    print(f"etcd: skipped ({exc})", file=sys.stderr)
                    continue
                etcd = LocalEtcd(1, base_dir=work / "etcd").start()
                try:
                    outcome = run_backend(etcd.url, args, work)
                finally:
                    etcd.stop()
            else:
                print(f"bench.apiserver: unknown backend {backend!r}", file=sys.stderr)
                return 2
        results["backends"][backend] = outcome
        print(f"{backend}: {json.dumps(outcome)}", file=sys.stderr)
    if args.pods > 0:
        load_before = os.getloadavg()
        with tempfile.TemporaryDirectory(prefix="podnet-bench-pods-") as tmp:
            results["pod_start"] = run_pod_start(args, Path(tmp))
        results["pod_start"]["date"] = stamp
        results["pod_start"]["load_average"] = {"before": load_before, "after": os.getloadavg()}
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
