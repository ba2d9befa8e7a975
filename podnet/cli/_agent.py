"""`podnet agent ...` and `podnet network ...`: the node agent and the cluster network config."""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from podnet.agent import (
    BACKEND_TYPES,
    DEFAULT_BACKEND,
    DEFAULT_CNI_DATA_DIR,
    DEFAULT_GC_GRACE,
    DEFAULT_GC_INTERVAL,
    DEFAULT_NET_CONFIG_PATH,
    DEFAULT_SOCKET,
    DEFAULT_SUBNET_FILE,
    Agent,
    CNIServer,
    ConfigError,
    CredentialsError,
    DaemonSettings,
    read_network_config,
    write_network_config,
)
from podnet.cli._daemon import log_to_stderr, stop_on_signals
from podnet.cni import ALL_VERSIONS
from podnet.runtime import DEFAULT_CACHE_DIR
from podnet.store import StoreError, open_store, store_url


def register(subparsers: Any) -> None:
    agent = subparsers.add_parser("agent", help="the node agent (flanneld's job)")
    verbs = agent.add_subparsers(dest="agent_command", metavar="COMMAND", required=True)

    run = verbs.add_parser("run", help="run the agent for this node")
    run.add_argument(
        "--node-name",
        "--node",
        dest="node",
        default=None,
        help="this node's name (default: $NODE_NAME, as kube-flannel passes it)",
    )
    run.add_argument("--iface", required=True, help="interface facing the other nodes")
    run.add_argument(
        "--kube-subnet-mgr",
        action="store_true",
        help="nodes from the Kubernetes API (flanneld's default mode), not the store",
    )
    run.add_argument(
        "--kubeconfig",
        default=None,
        help="with --kube-subnet-mgr: kubeconfig file (default: in-cluster service account)",
    )
    run.add_argument(
        "--net-config-path",
        default=DEFAULT_NET_CONFIG_PATH,
        help="with --kube-subnet-mgr: the network config file (flannel's net-conf.json)",
    )
    run.add_argument(
        "--store", default=None, help="store-direct: store URL (default: $PODNET_STORE)"
    )
    run.add_argument("--subnet-file", default=DEFAULT_SUBNET_FILE)
    run.add_argument("--bin-dir", default="/opt/cni/bin")
    run.add_argument("--conf-dir", default="/etc/cni/net.d")
    run.add_argument("--cni-data-dir", default=DEFAULT_CNI_DATA_DIR)
    run.add_argument("--cni-socket", default=DEFAULT_SOCKET)
    run.add_argument("--cni-version", default="1.1.0", choices=ALL_VERSIONS)
    run.add_argument("--ip-masq", action=argparse.BooleanOptionalAction, default=True)
    run.add_argument("--healthz-address", default="127.0.0.1")
    run.add_argument("--healthz-port", type=int, default=None)
    run.add_argument(
        "--cri-socket",
        default=None,
        help="the container runtime's CRI socket: garbage-collect what its forgotten "
        "sandboxes left behind (default: no GC)",
    )
    run.add_argument(
        "--gc-interval",
        type=positive_seconds,
        default=DEFAULT_GC_INTERVAL,
        help="seconds between GCs",
    )
    run.add_argument(
        "--gc-grace",
        type=seconds,
        default=DEFAULT_GC_GRACE,
        help="seconds an attachment no sandbox lists is kept (a pod being created)",
    )
    run.add_argument(
        "--runtime-cache-dir",
        default=DEFAULT_CACHE_DIR,
        help="the runtime's libcni cache dir (containerd: /var/lib/cni)",
    )
    run.set_defaults(handler=run_agent)

    serve = verbs.add_parser(
        "serve-cni", help="only serve the CNI socket the thin plugin executables talk to"
    )
    serve.add_argument("--socket", default=DEFAULT_SOCKET, help="unix socket path")
    serve.add_argument("--request-timeout", type=float, default=60.0)
    serve.set_defaults(handler=serve_cni)

    network = subparsers.add_parser("network", help="the cluster network config (net-conf)")
    net_verbs = network.add_subparsers(dest="network_command", metavar="COMMAND", required=True)
    setter = net_verbs.add_parser("set", help="store the cluster network config")
    setter.add_argument("--store", default=None)
    setter.add_argument("--network", required=True, help="cluster CIDR, e.g. 10.244.0.0/16")
    setter.add_argument("--backend", default=DEFAULT_BACKEND, help=" or ".join(BACKEND_TYPES))
    setter.add_argument("--vni", type=int, default=None)
    setter.add_argument("--direct-routing", action="store_true")
    setter.set_defaults(handler=set_network)
    getter = net_verbs.add_parser("get", help="print the cluster network config")
    getter.add_argument("--store", default=None)
    getter.set_defaults(handler=get_network)


def positive_seconds(text: str) -> float:
    value = seconds(text)
    if value == 0:
        raise argparse.ArgumentTypeError("must be more than 0")
    return value


def seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not value >= 0:  # also refuses nan
        raise argparse.ArgumentTypeError(f"{text!r} must not be negative")
    return value


def run_agent(args: argparse.Namespace) -> int:
    node = args.node or os.environ.get("NODE_NAME", "")
    if not node:
        print("podnet agent: no node name: pass --node-name or set NODE_NAME", file=sys.stderr)
        return 2
    log_to_stderr()
    settings = DaemonSettings(
        node=node,
        underlay=args.iface,
        store_url=None if args.kube_subnet_mgr else store_url(args.store),
        kube_subnet_mgr=args.kube_subnet_mgr,
        kubeconfig=args.kubeconfig,
        net_config_path=args.net_config_path,
        subnet_file=args.subnet_file,
        bin_dir=args.bin_dir,
        conf_dir=args.conf_dir,
        cni_data_dir=args.cni_data_dir,
        cni_socket=args.cni_socket,
        cni_version=args.cni_version,
        ip_masq=args.ip_masq,
        health_address=args.healthz_address,
        health_port=args.healthz_port,
        cri_socket=args.cri_socket,
        gc_interval=args.gc_interval,
        gc_grace=args.gc_grace,
        runtime_cache_dir=args.runtime_cache_dir,
    )
    stop = stop_on_signals()
    try:
        Agent(settings).run(stop)
    except (StoreError, ConfigError, CredentialsError, OSError) as exc:
        print(f"podnet agent: {exc}", file=sys.stderr)
        return 1
    return 0


def serve_cni(args: argparse.Namespace) -> int:
    server = CNIServer(args.socket, request_timeout=args.request_timeout)
    server.warm()
    try:
        server.start()
    except OSError as exc:
        print(f"podnet agent: cannot listen on {args.socket}: {exc.strerror}", file=sys.stderr)
        return 1
    stop_on_signals().wait()
    server.stop()
    return 0


def set_network(args: argparse.Namespace) -> int:
    backend: dict[str, Any] = {"Type": args.backend}
    if args.vni is not None:
        backend["VNI"] = args.vni
    if args.direct_routing:
        backend["DirectRouting"] = True
    try:
        store = open_store(store_url(args.store))
        try:
            write_network_config(store, {"Network": args.network, "Backend": backend})
        finally:
            store.close()
    except (StoreError, ConfigError) as exc:
        print(f"podnet network set: {exc}", file=sys.stderr)
        return 1
    return 0


def get_network(args: argparse.Namespace) -> int:
    try:
        store = open_store(store_url(args.store))
        try:
            config = read_network_config(store)
            raw = store.get("/podnet/network/config")
        finally:
            store.close()
    except (StoreError, ConfigError) as exc:
        print(f"podnet network get: {exc}", file=sys.stderr)
        return 1
    if config is None or raw is None:
        print("podnet network get: no network config in the store", file=sys.stderr)
        return 1
    print(json.dumps(json.loads(raw.value), indent=2))
    return 0
