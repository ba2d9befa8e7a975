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
  pod once the last one has its IP), three ways, one after the other, after one warm-up
  pod each:
  "sandbox": the node runtime's run_pod itself, in this process, without the API (what
  the driver calls); "api": a Pod with spec.nodeName POSTed, until a watch on the pods
  shows its status.podIP (the node's sandbox driver started it and wrote the status);
  "api, scheduled": the same without spec.nodeName, through the lab's scheduler. The API
  overhead is the difference of the p50s. Each of the C clients keeps one connection
  for its pods, as a controller creating pods does (its TLS handshake is made before the
  round: a new connection per pod is the client's start-up, not the pod's). Pods are
  deleted (and their sandboxes stopped) between rounds. The CPU each of the lab's
  daemons spent per pod in a round (with the pod's deletion) is recorded beside it.

    .venv/bin/python -m bench.apiserver [--nodes 5000] [--watchers 100] [--changes 20]
                                        [--lists 30] [--backends sqlite,etcd]
                                        [--pods 40 --pod-concurrency 1,8]

Results: bench/results/apiserver.json, and a line per backend on stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import queue
import secrets
import ssl
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
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
    """Watches every pod of a namespace; notes when each first shows a status.podIP."""

    def __init__(self, api: Any, namespace: str) -> None:
        super().__init__(daemon=True)
        self.api, self.namespace = api, namespace
        self.seen: dict[str, float] = {}
        self.changed = threading.Condition()
        self.ready = threading.Event()
        self.stopped = False

    def run(self) -> None:
        version = ""
        while not self.stopped:
            try:
                pod = None
                for _kind, pod in self.api.watch_pod_list(self.namespace, version, 5.0, self.ready):
                    version = pod["metadata"].get("resourceVersion", version)
                    name = pod["metadata"].get("name")
                    if (pod.get("status") or {}).get("podIP") and name not in self.seen:
                        with self.changed:
                            self.seen[name] = time.perf_counter()
                            self.changed.notify_all()
            except Exception:  # a timeout of the stream: watch again from where it was
                if self.stopped:
                    return


NODES = ("n1", "n2")


def _sandbox_round(lab: Any, names: list[str], concurrency: int) -> tuple[list[float], float]:
    """The node runtime's run_pod, as the driver calls it, without the API; the times, and
    the CPU ms per pod it took in this process (what a driver spends on the sandbox)."""
    node_runtime = lab.node_runtime

    def start(i: int) -> float:
        started = time.perf_counter()
        node_runtime.run_pod(NODES[i % 2], names[i], "default")
        return time.perf_counter() - started

    before = os.times()
    with ThreadPoolExecutor(concurrency) as pool:
        times = list(pool.map(start, range(len(names))))
    after = os.times()
    cpu = (after.user + after.system - before.user - before.system) * 1000 / len(names)
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


def _api_round(
    lab: Any, watcher: PodWatcher, names: list[str], concurrency: int, *, bound: bool
) -> tuple[list[float], int, dict[str, float]]:
    """Pods POSTed (bound to a node, or left to the scheduler), `concurrency` in flight:
    each client creates one and waits until the watch shows its status.podIP before the
    next; returns the times, how many never got one (60 s each), and the CPU ms per pod
    of the API server, the drivers (together) and the scheduler meanwhile."""
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
        with watcher.changed:
            watcher.changed.wait_for(lambda: name in watcher.seen, timeout=60)

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
    for name in sent:
        lab.pod_rm(name, "default")
    return times, len(sent) - len(times), {k: round(v, 1) for k, v in sorted(cpu.items())}


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
            _sandbox_round(lab, ["warm-s0", "warm-s1"], 1)
            _api_round(lab, watcher, ["warm-b0", "warm-b1"], 1, bound=True)
            _api_round(lab, watcher, ["warm-u0", "warm-u1"], 1, bound=False)
            for concurrency in [int(c) for c in args.pod_concurrency.split(",")]:
                names = [f"c{concurrency}-{i}" for i in range(args.pods)]
                times, sandbox_cpu = _sandbox_round(lab, [f"{n}-s" for n in names], concurrency)
                row: dict[str, Any] = {
                    "sandbox_ms": _ms(times),
                    "sandbox_cpu_ms_per_pod": sandbox_cpu,
                }
                for label, bound, suffix in (("api", True, "b"), ("api_scheduled", False, "u")):
                    times, missed, cpu = _api_round(
                        lab, watcher, [f"{n}-{suffix}" for n in names], concurrency, bound=bound
                    )
                    row[f"{label}_ms"], row[f"{label}_missed"] = _ms(times), missed
                    row[f"{label}_cpu_ms_per_pod"] = cpu
                api_p50, sandbox_p50 = row["api_ms"]["p50"], row["sandbox_ms"]["p50"]
                row["api_overhead_p50_ms"] = (
                    round(api_p50 - sandbox_p50, 1) if None not in (api_p50, sandbox_p50) else None
                )
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
