"""`podnet demo`: the walk-through of how a pod gets its IP, on a real lab.

A cluster of network-namespace nodes comes up (store, nodeipam controller, one agent per
node), pods start on every node, every pod pings every other, and for one pod every
artifact of the walk-through is shown with its real contents. Then the lab goes away.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time

from podnet.cli._lab import ERRORS, pod_cidrs, print_matrix
from podnet.cli._table import table
from podnet.lab import GraphError, Lab, LabPod, endpoints_of, matrix, render, take_picture

DEMO_LAB = "demo"
POD_KINDS = ("web", "api", "db", "cache")


def _section(title: str) -> None:
    print(f"\n== {title}")


def _file(title: str, path: str) -> None:
    print(f"\n--- {title}: {path}")
    with open(path, "rb") as handle:
        data = handle.read()
    text = data.decode(errors="replace")
    if path.endswith((".conflist", ".json")) or text.lstrip().startswith("{"):
        try:
            text = json.dumps(json.loads(text), indent=2)
        except ValueError:
            pass
    print(text.replace("\r\n", "\\r\\n\n").rstrip())


def _kubectl_pod_cidr(lab: Lab, node: str, expected: str) -> None:
    """The walk-through's command, run for real against the lab's API server (jq's job
    done by json when jq is missing)."""
    print(f"\n--- export KUBECONFIG=$(podnet lab --name {lab.name} kubeconfig)")
    print(f"--- kubectl get no {node} -o json | jq '.spec.podCIDR'")
    if shutil.which("kubectl") is None:
        print(f"(kubectl is not installed; the store says {json.dumps(expected)})")
        return
    got = subprocess.run(
        ["kubectl", "--kubeconfig", lab.kubeconfig, "get", "no", node, "-o", "json"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    if got.returncode != 0:
        print(f"kubectl failed: {got.stderr.strip()}")
        return
    if shutil.which("jq"):
        jq = subprocess.run(
            ["jq", ".spec.podCIDR"], input=got.stdout, capture_output=True, text=True, timeout=60
        )
        print(jq.stdout.rstrip())
    else:
        print(json.dumps(json.loads(got.stdout)["spec"].get("podCIDR")))
    wide = subprocess.run(
        ["kubectl", "--kubeconfig", lab.kubeconfig, "get", "nodes", "-o", "wide"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    print("\n--- kubectl get nodes -o wide")
    print((wide.stdout or wide.stderr).rstrip())
    pods = subprocess.run(
        ["kubectl", "--kubeconfig", lab.kubeconfig, "get", "pods", "-o", "wide"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    print("\n--- kubectl get pods -o wide")
    print((pods.stdout or pods.stderr).rstrip())


def run_demo(args: argparse.Namespace) -> int:
    if not 1 <= args.nodes <= 8 or not 1 <= args.pods_per_node <= len(POD_KINDS):
        print("podnet demo: use 1-8 nodes and 1-4 pods per node", file=sys.stderr)
        return 2
    lab = Lab(DEMO_LAB)
    if lab.exists():
        lab.down()  # the leftovers of an earlier demo that was interrupted
    start = time.monotonic()
    try:
        return _walk_through(lab, args, start)
    except ERRORS as exc:
        print(f"podnet demo: {exc}", file=sys.stderr)
        return 1
    finally:
        if not args.keep:
            lab.down()
            print(
                f"\nlab down: every namespace, process and file of the demo is gone "
                f"({time.monotonic() - start:.1f}s in all)"
            )
        else:
            print(f"\nthe lab is still up: `podnet lab --name {DEMO_LAB} down` removes it")


def _walk_through(lab: Lab, args: argparse.Namespace, start: float) -> int:
    stacks = "IPv4 only" if args.ipv4_only else "dual-stack: IPv4 and IPv6"
    _section(f"a {args.nodes}-node cluster on this machine ({args.backend} overlay, {stacks})")
    lab.up(
        args.nodes,
        backend=args.backend,
        dual_stack=not args.ipv4_only,
        progress=lambda m: print(f"  - {m}", flush=True),
    )
    print(f"  up in {time.monotonic() - start:.1f}s")

    _section(
        "pods: Pod objects through the API; each node's driver has the runtime create the "
        "netns and run flannel -> bridge -> host-local"
    )
    pods: list[LabPod] = []
    for node in lab.node_names():
        for kind in POD_KINDS[: args.pods_per_node]:
            run = lab.pod_run(f"{kind}-{node}", node)
            pods.append(LabPod(node, run.sandbox))
            print(f"  - {run.sandbox.key} on {node}: {', '.join(run.sandbox.ips)}", flush=True)

    cidrs = pod_cidrs(lab)
    _section("nodes and their podCIDRs (given by the nodeipam controller)")
    print(
        table(
            ["NODE", "ADDRESS", "PODCIDRS"],
            [[n, str(lab.node(n).ip), cidrs.get(n, "")] for n in lab.node_names()],
        )
    )
    _section("pods")
    print(
        table(
            ["POD", "NODE", "IPS"],
            [[p.sandbox.key, p.node, ",".join(p.sandbox.ips)] for p in pods],
        )
    )

    _section("connectivity: real ICMP from every pod to every other pod")
    ok = True
    for version in (4,) if args.ipv4_only else (4, 6):
        endpoints = endpoints_of(pods, version)
        print(f"IPv{version}")
        ok = print_matrix(matrix(endpoints), endpoints) and ok

    _section("a picture of the cluster, read from the Node objects and each node's kernel")
    try:
        print(f"  {render(take_picture(lab), args.picture)}")
    except GraphError as exc:
        print(f"  (no picture: {exc})")

    pod = pods[min(len(pods) - 1, args.pods_per_node)]  # the first pod of the second node
    d = lab.node_dirs(pod.node)
    cid = pod.sandbox.id
    _section(f"the walk-through for pod {pod.sandbox.key} on node {pod.node}")
    _kubectl_pod_cidr(lab, pod.node, cidrs.get(pod.node, "").split(",")[0])
    _file("subnet.env, written by the node agent", d.subnet_file)
    _file("the conflist, written by install-cni", os.path.join(d.conf_dir, "10-flannel.conflist"))
    _file(
        "the delegate config flannel passed to bridge", os.path.join(d.cni_data_dir, "flannel", cid)
    )
    _file(
        "host-local's reservation (container ID, then interface)",
        os.path.join(d.cni_data_dir, "networks", "cbr0", pod.sandbox.ip),
    )
    cache = os.path.join(d.cni_data_dir, "results", f"cbr0-{cid}-eth0")
    with open(cache) as handle:
        cached = json.load(handle)
    print(f"\n--- the CNI result the runtime cached: {cache}")
    print(json.dumps(cached.get("result"), indent=2))
    return 0 if ok else 1
