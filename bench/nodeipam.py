"""Node IPAM benchmark: N node registrations until every node has a podCIDR, on sqlite and
on etcd, through the Kubernetes API and on the store directly, and the pure allocator
handing out every /24 of a /8 (65,536 blocks).

    .venv/bin/python -m bench.nodeipam [--nodes 5000] [--backends sqlite,etcd]
                                       [--through api,store]

Store: the controller runs in this process on its own store client; `--writers` threads
register the nodes (as kubelets would), each with its own client; a watch records when
each node's podCIDR appears.

API (bench.nodeipam_api): `podnet apiserver run` over the store in its own process, the
API controller (podnet.nodeipam.KubeController, the controller manager's identity) in
this one, `--writers` processes registering the nodes through the API as kubelets do, and
a watch through the API recording when each podCIDR appears. Two figures: nodes
registered while the controller runs, and a backlog (all nodes registered first, then the
controller starts, as after an outage).

Results go to bench/results/nodeipam.json.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import platform
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from bench import _podcidrs as podcidrs
from bench.nodeipam_api import bench_controller_api
from podnet.nodeipam import CIDRRangeFull, CIDRSet, Controller, parse_config
from podnet.store import LocalEtcd, Nodes, open_store

RESULTS = Path(__file__).parent / "results" / "nodeipam.json"


def bench_controller(url: str, nodes: int, writers: int) -> dict[str, Any]:
    """Register `nodes` nodes from `writers` threads while a controller runs; time until
    every node has a podCIDR."""
    config = parse_config(podcidrs.CLUSTER_CIDR, node_cidr_mask_size=podcidrs.NODE_MASK)
    controller_store = open_store(url)
    watch_store = open_store(url)
    controller = Controller(controller_store, config)
    stop = threading.Event()
    runner = threading.Thread(target=controller.run, args=(stop,), name="controller")

    names = podcidrs.node_names(nodes)
    registered_at: dict[str, float] = {}
    assigned_at: dict[str, float] = {}
    cidrs: dict[str, str] = {}
    all_assigned = threading.Event()
    start_revision = watch_store.list("/registry/minions/").revision + 1

    def observe() -> None:
        node_api = Nodes(watch_store)
        with watch_store.watch(node_api.prefix, from_revision=start_revision) as watch:
            while not all_assigned.is_set() and not stop.is_set():
                for event in watch.get(0.2):
                    change = node_api.change(event)
                    if (
                        change.node is not None
                        and change.node.pod_cidr
                        and change.name not in cidrs
                    ):
                        cidrs[change.name] = change.node.pod_cidr
                        assigned_at[change.name] = time.perf_counter()
                if len(cidrs) == nodes:
                    all_assigned.set()

    def register(chunk: list[str]) -> None:
        client = open_store(url)
        node_api = Nodes(client)
        try:
            for name in chunk:
                registered_at[name] = time.perf_counter()
                node_api.register(name, addresses=["192.0.2.1"])
        finally:
            client.close()

    observer = threading.Thread(target=observe, name="observer")
    observer.start()
    runner.start()
    time.sleep(0.5)  # the controller has listed and is watching
    started = time.perf_counter()
    threads = [threading.Thread(target=register, args=(names[i::writers],)) for i in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    registered = time.perf_counter()
    finished = all_assigned.wait(timeout=podcidrs.wait_seconds(nodes))
    done = time.perf_counter()
    stop.set()
    runner.join()
    observer.join()
    controller_store.close()
    watch_store.close()
    podcidrs.require_one_each(finished, cidrs, nodes)

    latencies = sorted(assigned_at[n] - registered_at[n] for n in names)
    return {
        "nodes": nodes,
        "writers": writers,
        "cluster_cidr": podcidrs.CLUSTER_CIDR,
        "node_mask": podcidrs.NODE_MASK,
        "register_seconds": round(registered - started, 3),
        "registrations_per_second": round(nodes / (registered - started), 1),
        "all_assigned_seconds": round(done - started, 3),
        "assignments_per_second": round(nodes / (done - started), 1),
        "register_to_podcidr_ms": podcidrs.latency_ms(latencies),
        "controller": {
            "allocations": controller.counters.allocations,
            "cas_conflicts": controller.counters.cas_conflicts,
            "claim_conflicts": controller.counters.claim_conflicts,
            "resyncs": controller.counters.resyncs,
        },
    }


def bench_allocator() -> dict[str, Any]:
    """The pure CIDR set over a /8 with /24 nodes: allocate all 65,536 blocks, then release
    and reallocate every other one."""
    cidrs = CIDRSet(ipaddress.ip_network(podcidrs.CLUSTER_CIDR), podcidrs.NODE_MASK)
    began = time.perf_counter()
    blocks = [cidrs.allocate_next() for _ in range(cidrs.max_blocks)]
    filled = time.perf_counter() - began
    try:
        cidrs.allocate_next()
        raise SystemExit("allocated past the end")
    except CIDRRangeFull:
        pass
    half = blocks[::2]
    began = time.perf_counter()
    for block in half:
        cidrs.release(block)
    released = time.perf_counter() - began
    began = time.perf_counter()
    again = [cidrs.allocate_next() for _ in half]
    refilled = time.perf_counter() - began
    assert sorted(again) == sorted(half)
    # Worst case for next-fit: a single free block just behind the cursor.
    cidrs.release(blocks[1000])
    began = time.perf_counter()
    cidrs.allocate_next()
    worst = time.perf_counter() - began
    return {
        "cluster_cidr": podcidrs.CLUSTER_CIDR,
        "node_mask": podcidrs.NODE_MASK,
        "blocks": len(blocks),
        "allocate_all_seconds": round(filled, 4),
        "allocate_us_per_block": round(1e6 * filled / len(blocks), 2),
        "release_half_seconds": round(released, 4),
        "reallocate_half_seconds": round(refilled, 4),
        "full_scan_for_last_free_block_ms": round(1000 * worst, 3),
    }


def machine() -> dict[str, Any]:
    try:
        etcd = subprocess.run(
            [LocalEtcd.binary(), "--version"], capture_output=True, text=True, check=True
        ).stdout.splitlines()[0]
    except Exception as exc:  # the benchmark still runs sqlite without etcd
        etcd = f"unavailable: {exc}"
    return {
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "etcd": etcd,
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
    }


def _bench(way: str, url: str, args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    if way == "store":
        return bench_controller(url, args.nodes, args.writers)
    backlog = way == "api-backlog"
    return bench_controller_api(url, args.nodes, args.writers, tmp, backlog=backlog)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.nodeipam", description=__doc__)
    parser.add_argument("--nodes", type=int, default=5000)
    parser.add_argument("--writers", type=int, default=4)
    parser.add_argument("--backends", default="sqlite,etcd")
    parser.add_argument("--through", default="api,store", help="api, store or both")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)

    results: dict[str, Any] = {
        "benchmark": "nodeipam",
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": machine(),
        "allocator": bench_allocator(),
        "controller": {},
        "controller_api": {},
    }
    print(f"allocator: {json.dumps(results['allocator'])}", file=sys.stderr)
    through = {t.strip() for t in args.through.split(",") if t.strip()}
    if not through <= {"api", "store"}:
        parser.error(f"--through: api and/or store, not {args.through!r}")
    for backend in [b.strip() for b in args.backends.split(",") if b.strip()]:
        if backend not in ("sqlite", "etcd"):
            parser.error(f"unknown backend {backend!r}")
        ways = (["api", "api-backlog"] if "api" in through else []) + (
            ["store"] if "store" in through else []
        )
        for way in ways:
            with tempfile.TemporaryDirectory(prefix="pn-bench-") as tmp:
                if backend == "sqlite":
                    outcome = _bench(way, f"sqlite://{tmp}/cluster.db", args, Path(tmp))
                else:
                    with LocalEtcd(1, base_dir=Path(tmp) / "etcd") as etcd:
                        outcome = _bench(way, etcd.url, args, Path(tmp))
            if way == "store":
                results["controller"][backend] = outcome
            else:
                mode = "backlog" if way == "api-backlog" else "registered_while_running"
                results["controller_api"].setdefault(backend, {})[mode] = outcome
            print(f"{backend} ({way}): {json.dumps(outcome)}", file=sys.stderr)

    args.output.parent.mkdir(parents=True, exist_ok=True)
    temp = args.output.with_suffix(".json.tmp")
    temp.write_text(json.dumps(results, indent=2) + "\n")
    os.replace(temp, args.output)
    print(f"wrote {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
