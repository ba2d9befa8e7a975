"""`podnet lab ...` and `podnet demo`: a cluster of network-namespace nodes on this machine."""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from typing import Any

from podnet.agent import BACKEND_TYPES, DEFAULT_BACKEND, DEFAULT_GC_GRACE, DEFAULT_GC_INTERVAL
from podnet.apiserver import CONTROLLER_MANAGER
from podnet.apiserver import SCHEDULER as SCHEDULER_USER
from podnet.cli._agent import positive_seconds, seconds
from podnet.cli._daemon import log_to_stderr
from podnet.cli._pod import port_mapping
from podnet.cli._table import table
from podnet.cli._trace import latest as latest_traces
from podnet.cli._trace import timeline
from podnet.cni import CNIError
from podnet.lab import (
    GRAPH_FORMATS,
    LAB_ROOT,
    NODE_MONITOR_GRACE_SECONDS,
    RUNTIMES,
    Endpoint,
    GraphError,
    Lab,
    LabError,
    NodeLifecycle,
    SandboxDriver,
    Scheduler,
    TopologyError,
    endpoints_of,
    matrix,
    render,
    run_restarter,
    take_picture,
)
from podnet.netlink import DEFAULT_NETNS_DIR
from podnet.runtime import PodExists, PodNotFound, SandboxError
from podnet.store import StoreError

DEFAULT_LAB = "lab"
DEMO_PICTURE = os.path.join(tempfile.gettempdir(), "podnet-demo.svg")
ERRORS = (
    LabError,
    TopologyError,
    CNIError,
    SandboxError,
    PodExists,
    PodNotFound,
    StoreError,
    OSError,
)


def register(subparsers: Any) -> None:
    lab = subparsers.add_parser("lab", help="a multi-node cluster on this machine")
    lab.add_argument("--name", default=DEFAULT_LAB, help="lab name (lowercase letters, digits)")
    verbs = lab.add_subparsers(dest="lab_command", metavar="COMMAND", required=True)

    up = verbs.add_parser("up", help="build the nodes, start the store, nodeipam and agents")
    up.add_argument("--nodes", type=int, default=3)
    up.add_argument("--backend", choices=BACKEND_TYPES, default=DEFAULT_BACKEND)
    up.add_argument(
        "--dual-stack",
        action="store_true",
        help="IPv6 beside IPv4: a ULA underlay (fd00:192:0:2::/64) and ULA pods "
        "(fd00:10:244::/56, a /64 per node); pods get an address of each family",
    )
    up.add_argument(
        "--store",
        default=None,
        help="store URL, or 'etcd' to run one in the lab (default: sqlite in the lab dir)",
    )
    up.add_argument(
        "--runtime",
        choices=RUNTIMES,
        default="podnet",
        help="each node's container runtime: podnet's runtime library, or a real containerd "
        "per node driven over CRI (default: podnet)",
    )
    up.add_argument(
        "--gc-interval",
        type=positive_seconds,
        default=DEFAULT_GC_INTERVAL,
        help="containerd: seconds between the agents' GC rounds",
    )
    up.add_argument(
        "--gc-grace",
        type=seconds,
        default=DEFAULT_GC_GRACE,
        help="containerd: seconds an attachment no sandbox lists is kept",
    )
    up.add_argument(
        "--second-underlay",
        action="store_true",
        help="give every node a second underlay interface, eth1 on 192.0.2.128/25 besides "
        "eth0 on 192.0.2.0/25 (default: eth0 only)",
    )
    up.add_argument(
        "--iface",
        action="append",
        default=[],
        metavar="NAME|ADDRESS",
        help="each agent's --iface, repeatable (default: eth0 unless --iface-regex or "
        "--iface-can-reach is given)",
    )
    up.add_argument(
        "--iface-regex",
        action="append",
        default=[],
        metavar="REGEX",
        help="each agent's --iface-regex, repeatable (default: none)",
    )
    up.add_argument(
        "--iface-can-reach",
        default=None,
        metavar="ADDRESS",
        help="each agent's --iface-can-reach (default: none)",
    )
    up.set_defaults(handler=lab_up)

    down = verbs.add_parser("down", help="stop and remove everything the lab made")
    down.set_defaults(handler=lab_down)

    node = verbs.add_parser("node", help="nodes joining and leaving")
    node_verbs = node.add_subparsers(dest="node_command", metavar="COMMAND", required=True)
    join = node_verbs.add_parser("add", help="a new node joins the lab")
    join.add_argument("node_name", metavar="NAME")
    join.set_defaults(handler=lab_node_add)
    leave = node_verbs.add_parser("rm", help="a node leaves (its pods go with it)")
    leave.add_argument("node_name", metavar="NAME")
    leave.set_defaults(handler=lab_node_rm)

    pod = verbs.add_parser("pod", help="pods on the lab's nodes")
    pod_verbs = pod.add_subparsers(dest="pod_command", metavar="COMMAND", required=True)
    run = pod_verbs.add_parser(
        "run", help="create a Pod (on --node, or where the scheduler puts it); wait for its IP"
    )
    run.add_argument("pod_name", metavar="NAME")
    run.add_argument("--node", default=None, help="bind it to this node (spec.nodeName)")
    run.add_argument("--namespace", default="default")
    run.add_argument(
        "-p",
        "--port",
        dest="ports",
        action="append",
        type=port_mapping,
        default=[],
        metavar="[HOSTIP:]HOST:CONTAINER[/PROTO]",
        help="map a port of the node to the pod (repeatable; protocol tcp, udp or sctp)",
    )
    run.add_argument(
        "--timeout", type=positive_seconds, default=60.0, help="seconds to wait for its IP"
    )
    run.set_defaults(handler=lab_pod_run)
    for verb in ("delete", "rm"):
        rm = pod_verbs.add_parser(
            verb, help="delete a Pod and wait until its sandbox is stopped (CNI DEL)"
        )
        rm.add_argument("pod_name", metavar="NAME")
        rm.add_argument("--namespace", default="default")
        rm.set_defaults(handler=lab_pod_rm)

    get = verbs.add_parser("get", help="list lab objects")
    get.add_argument("what", choices=("pods", "nodes"))
    get.add_argument("-o", "--output", choices=("wide", "json"), default=None)
    get.set_defaults(handler=lab_get)

    supervise = verbs.add_parser(
        "supervise", help="restart the lab's agents, nodeipam and etcd when they die (run by up)"
    )
    supervise.add_argument("--dir", required=True, help="the lab's state directory")
    supervise.set_defaults(handler=lab_supervise)

    check = verbs.add_parser("check", help="ping from every pod to every other pod")
    check.set_defaults(handler=lab_check)

    scheduler = verbs.add_parser("scheduler", help="(started by `lab up`) the lab's scheduler")
    scheduler.add_argument("--root", default=LAB_ROOT, help=argparse.SUPPRESS)
    scheduler.add_argument("--netns-dir", default=DEFAULT_NETNS_DIR, help=argparse.SUPPRESS)
    scheduler.set_defaults(handler=lab_scheduler)

    driver = verbs.add_parser("driver", help="(started by `lab up`) one node's sandbox driver")
    driver.add_argument("--node", required=True)
    driver.add_argument("--root", default=LAB_ROOT, help=argparse.SUPPRESS)
    driver.add_argument("--netns-dir", default=DEFAULT_NETNS_DIR, help=argparse.SUPPRESS)
    driver.set_defaults(handler=lab_driver)

    doctor = verbs.add_parser(
        "doctor",
        help="podnet doctor on a node: what keeps its pods from an IP, and the fix",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    doctor.add_argument("node", metavar="NODE", help="the node to examine")
    doctor.add_argument("--fix", action="store_true", help="apply the fixes that are safe")
    doctor.add_argument(
        "-o", "--output", choices=("text", "json"), default="text", help="output format"
    )
    doctor.set_defaults(handler=lab_doctor)

    trace = verbs.add_parser(
        "trace",
        help="how a pod's node agent served its last ADD and DEL, hop by hop",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    trace.add_argument("pod", metavar="POD", help="the pod's name")
    trace.add_argument("-n", "--namespace", default="default", help="the pod's namespace")
    trace.add_argument(
        "--verb", choices=("ADD", "DEL", "CHECK", "all"), default="all", help="which requests"
    )
    trace.add_argument(
        "-o", "--output", choices=("text", "json"), default="text", help="output format"
    )
    trace.set_defaults(handler=lab_trace)

    graph = verbs.add_parser(
        "graph",
        help="draw the cluster as it is: underlay, nodes, tunnels or routes, cni0, pods",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    graph.add_argument(
        "-o",
        "--output",
        default="lab.svg",
        metavar="FILE",
        help=f"where to draw it; the suffix names the format ({', '.join(GRAPH_FORMATS)})",
    )
    graph.set_defaults(handler=lab_graph)

    kubeconfig = verbs.add_parser(
        "kubeconfig", help="print the path of the admin kubeconfig (export KUBECONFIG=$(...))"
    )
    kubeconfig.set_defaults(handler=lab_kubeconfig)

    demo = subparsers.add_parser("demo", help="a 3-node lab: pods get IPs and reach each other")
    demo.add_argument("--nodes", type=int, default=3, help="how many nodes, 1-8 (default: 3)")
    demo.add_argument(
        "--pods-per-node", type=int, default=2, help="pods on each node, 1-4 (default: 2)"
    )
    demo.add_argument(
        "--backend",
        choices=BACKEND_TYPES,
        default=DEFAULT_BACKEND,
        help=f"the overlay (default: {DEFAULT_BACKEND})",
    )
    demo.add_argument(
        "--ipv4-only",
        action="store_true",
        help="pods get an IPv4 address only (default: dual-stack, an address of each family)",
    )
    demo.add_argument(
        "--keep", action="store_true", help="leave the lab up afterwards (default: take it down)"
    )
    demo.add_argument(
        "--picture",
        default=DEMO_PICTURE,
        metavar="FILE",
        help=f"where to draw the cluster (svg, png, pdf or dot; default: {DEMO_PICTURE})",
    )
    demo.set_defaults(handler=demo_run)


def _fail(args: argparse.Namespace, exc: BaseException) -> int:
    # One line naming the problem; the logs under the lab dir hold the rest.
    print(f"podnet lab: {exc}", file=sys.stderr)
    return 1


def _progress(message: str) -> None:
    print(f"  - {message}", flush=True)


def lab_up(args: argparse.Namespace) -> int:
    try:
        lab = Lab(args.name)
        start = time.monotonic()
        stacks = ", dual-stack" if args.dual_stack else ""
        print(
            f"lab {args.name}: {args.nodes} nodes, {args.backend}, runtime {args.runtime}{stacks}"
        )
        lab.up(
            args.nodes,
            backend=args.backend,
            store=args.store,
            runtime=args.runtime,
            gc_interval=args.gc_interval,
            gc_grace=args.gc_grace,
            second_underlay=args.second_underlay,
            interface_args=_interface_args(args),
            progress=_progress,
            dual_stack=args.dual_stack,
        )
        print(f"lab {args.name} is up in {time.monotonic() - start:.1f}s")
    except ERRORS as exc:
        return _fail(args, exc)
    return 0


def _interface_args(args: argparse.Namespace) -> list[str]:
    """The agents' interface flags, as given to `lab up`."""
    argv = [f"--iface={value}" for value in args.iface]
    argv += [f"--iface-regex={value}" for value in args.iface_regex]
    if args.iface_can_reach:
        argv.append(f"--iface-can-reach={args.iface_can_reach}")
    return argv


def _run_lab_daemon(
    args: argparse.Namespace, make: Callable[[Lab], Callable[[threading.Event], None]]
) -> int:
    """A lab daemon (a node's sandbox driver, the scheduler): `make` builds it for the lab
    and hands back its run(stop), which runs until SIGINT or SIGTERM."""
    log_to_stderr()
    stop = threading.Event()

    def terminate(*_: object) -> None:
        stop.set()
        raise SystemExit(0)  # out of the blocking watch read at once

    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, terminate)
    try:
        run = make(Lab(args.name, root=args.root, netns_dir=args.netns_dir))
    except ERRORS as exc:
        return _fail(args, exc)
    run(stop)
    return 0


def lab_driver(args: argparse.Namespace) -> int:
    def driver(lab: Lab) -> Callable[[threading.Event], None]:
        return SandboxDriver(
            args.node,
            lab.node_runtime,
            lab.apiserver_files().host_kubeconfig(f"system:node:{args.node}"),
            host_ip=str(lab.node(args.node).ip),
            owned_dir=os.path.join(lab.node_dirs(args.node).root, "driver-pods"),
        ).run

    return _run_lab_daemon(args, driver)


def _lab_that_is_up(name: str) -> Lab:
    lab = Lab(name)
    if not lab.exists():
        raise LabError(f"lab {name!r} is not up")
    return lab


def lab_doctor(args: argparse.Namespace) -> int:
    try:
        lab = _lab_that_is_up(args.name)
        extra = ["-o", args.output, *(["--fix"] if args.fix else [])]
        argv = lab.doctor_argv(args.node, *extra)
    except ERRORS as exc:
        return _fail(args, exc)
    # doctor's own output and exit code are the answer: non-zero while something is wrong
    return subprocess.run(argv, check=False).returncode


def lab_trace(args: argparse.Namespace) -> int:
    try:
        lab = _lab_that_is_up(args.name)
        argvs = lab.trace_argvs(args.pod, args.namespace, "--verb", args.verb, "-o", "json")
    except ERRORS as exc:
        return _fail(args, exc)
    traces, errors = [], []
    for argv in argvs:  # every node that may have served the pod: the latest answers win
        try:
            done = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=30)
        except subprocess.TimeoutExpired:
            errors.append(f"podnet lab: asking {argv[1]} took over 30s")
            continue
        if done.returncode == 0:
            traces += json.loads(done.stdout)["traces"]
        else:
            errors.append(done.stderr.strip())
    if not traces:
        print(errors[-1] if errors else "podnet lab: no node to ask", file=sys.stderr)
        return 1
    chosen = latest_traces(traces, args.verb)
    if args.output == "json":
        print(json.dumps({"traces": chosen}, indent=2))
    else:
        print("\n\n".join(timeline(trace) for trace in chosen))
    return 0


def lab_graph(args: argparse.Namespace) -> int:
    try:
        lab = _lab_that_is_up(args.name)
        print(render(take_picture(lab), args.output))
    except (*ERRORS, GraphError) as exc:
        return _fail(args, exc)
    return 0


def lab_scheduler(args: argparse.Namespace) -> int:
    def control_plane(lab: Lab) -> Callable[[threading.Event], None]:
        scheduler = Scheduler(lab.apiserver_files().host_kubeconfig(SCHEDULER_USER))
        lifecycle = NodeLifecycle(
            lab.apiserver_files().host_kubeconfig(CONTROLLER_MANAGER),
            grace=float(lab.state().get("node_monitor_grace") or NODE_MONITOR_GRACE_SECONDS),
        )

        def run(stop: threading.Event) -> None:
            # The node lifecycle controller beside the scheduler: the lab's control plane.
            watcher = threading.Thread(target=lifecycle.run, args=(stop,), name="lifecycle")
            watcher.daemon = True
            watcher.start()
            scheduler.run(stop)

        return run

    return _run_lab_daemon(args, control_plane)


def lab_kubeconfig(args: argparse.Namespace) -> int:
    try:
        lab = _lab_that_is_up(args.name)
        print(lab.kubeconfig)
    except ERRORS as exc:
        return _fail(args, exc)
    return 0


def lab_down(args: argparse.Namespace) -> int:
    try:
        removed = Lab(args.name).down()
    except ERRORS as exc:
        return _fail(args, exc)
    print(f"lab {args.name}: removed {len(removed)} processes and namespaces")
    return 0


def lab_node_add(args: argparse.Namespace) -> int:
    try:
        node = Lab(args.name).add_node(args.node_name)
    except ERRORS as exc:
        return _fail(args, exc)
    print(f"node {node.name} ({node.ip}) joined and is ready")
    return 0


def lab_node_rm(args: argparse.Namespace) -> int:
    try:
        Lab(args.name).remove_node(args.node_name)
    except ERRORS as exc:
        return _fail(args, exc)
    print(f"node {args.node_name} left")
    return 0


def lab_pod_run(args: argparse.Namespace) -> int:
    try:
        run = Lab(args.name).pod_run(
            args.pod_name, args.node, args.namespace, ports=args.ports, timeout=args.timeout
        )
    except ERRORS as exc:
        return _fail(args, exc)
    print(f"pod {run.sandbox.key} on {run.node}: {', '.join(run.sandbox.ips)}")
    return 0


def lab_pod_rm(args: argparse.Namespace) -> int:
    try:
        node = Lab(args.name).pod_rm(args.pod_name, args.namespace)
    except ERRORS as exc:
        return _fail(args, exc)
    print(f"removed pod {args.namespace}/{args.pod_name} from {node}")
    return 0


def pod_cidrs(lab: Lab) -> dict[str, str]:
    """Each node's podCIDRs, comma-separated as kubectl prints spec.podCIDRs (a
    dual-stack node has one of each family)."""
    return {n.name: ",".join(n.pod_cidrs) for n in lab.nodes()}


def lab_supervise(args: argparse.Namespace) -> int:
    return run_restarter(args.dir)


def lab_get(args: argparse.Namespace) -> int:
    try:
        lab = Lab(args.name)
        cidrs = pod_cidrs(lab)
        if args.what == "nodes":
            rows: list[list[object]] = [
                [n, str(lab.node(n).ip), cidrs.get(n, "") or "<none>", *lab.agent_status(n)]
                for n in lab.node_names()
            ]
            print(table(["NODE", "ADDRESS", "PODCIDRS", "AGENT", "RESTARTS"], rows))
            return 0
        pods = lab.pod_objects()
        sandboxes = {
            (p.node, p.sandbox.key): p.sandbox for p in (lab.pods() if args.output else [])
        }
    except ERRORS as exc:
        return _fail(args, exc)
    entries: list[dict[str, Any]] = []
    for pod in pods:
        meta, spec, status = pod["metadata"], pod.get("spec") or {}, pod.get("status") or {}
        key = f"{meta['namespace']}/{meta['name']}"
        node = str(spec.get("nodeName") or "")
        sandbox = sandboxes.get((node, key))
        phase = "Terminating" if meta.get("deletionTimestamp") else status.get("phase", "Pending")
        entries.append(
            {
                "name": meta["name"],
                "namespace": meta["namespace"],
                "node": node,
                "ip": str(status.get("podIP") or ""),
                # status.podIPs: a dual-stack pod's IPv6 address after its pod IP
                "ips": [str(i.get("ip")) for i in status.get("podIPs") or [] if i.get("ip")],
                "podCIDR": cidrs.get(node, "").split(",")[0],
                "podCIDRs": [c for c in cidrs.get(node, "").split(",") if c],
                "status": phase,
                "netns": sandbox.netns if sandbox else "",
                "state": sandbox.state if sandbox else "",
            }
        )
    if args.output == "json":
        print(json.dumps(entries, indent=2))
        return 0
    headers = ["POD", "STATUS", "NODE", "IP", "PODCIDR"]
    cells: list[list[object]] = [
        [f"{r['namespace']}/{r['name']}", r["status"], r["node"] or "<none>",
         r["ip"] or "<none>", r["podCIDR"] or "<none>"]
        for r in entries
    ]  # fmt: skip
    if args.output == "wide":
        headers += ["SANDBOX", "NETNS"]
        for row, r in zip(cells, entries, strict=True):
            row[3] = ",".join(r["ips"]) or row[3]  # -o wide: every pod IP (status.podIPs)
            row += [r["state"] or "<none>", r["netns"] or "<none>"]
    print(table(headers, cells))
    return 0


def print_matrix(results: dict[tuple[str, str], bool], endpoints: list[Endpoint]) -> bool:
    names = [e.name for e in endpoints]
    rows = []
    for src in endpoints:
        row: list[object] = [f"{src.name} ({src.node})"]
        for dst in names:
            row.append("-" if dst == src.name else ("ok" if results[(src.name, dst)] else "FAIL"))
        rows.append(row)
    print(table(["FROM \\ TO", *names], rows))
    failed = [pair for pair, ok in results.items() if not ok]
    total = len(results)
    print(f"{total - len(failed)}/{total} pod pairs reach each other")
    return not failed


def lab_check(args: argparse.Namespace) -> int:
    try:
        pods = Lab(args.name).pods()
    except ERRORS as exc:
        return _fail(args, exc)
    endpoints = endpoints_of(pods)
    if len(endpoints) < 2:
        print("podnet lab check: fewer than two pods to check", file=sys.stderr)
        return 1
    ipv6 = endpoints_of(pods, 6)
    if ipv6:  # a dual-stack lab: every pair over both families
        print("IPv4")
    ok = print_matrix(matrix(endpoints), endpoints)
    if ipv6:
        print("IPv6")
        ok = print_matrix(matrix(ipv6), ipv6) and ok
    return 0 if ok else 1


def demo_run(args: argparse.Namespace) -> int:
    from podnet.cli._demo_lab import run_demo

    return run_demo(args)
