"""`podnet agent ...`: the node agent."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from podnet.agent import (
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
)
from podnet.cli._daemon import log_to_stderr, stop_on_signals
from podnet.cni import ALL_VERSIONS
from podnet.runtime import DEFAULT_CACHE_DIR


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
    run.add_argument(
        "--iface",
        default="",
        help="interface facing the other nodes (default: the default route's, as flanneld)",
    )
    run.add_argument(
        "--kube-subnet-mgr",
        action="store_true",
        help="nodes from the Kubernetes API, as flanneld's flag says (podnet's only mode)",
    )
    run.add_argument(
        "--kubeconfig",
        default=None,
        help="kubeconfig file (default: the pod's service account, in-cluster)",
    )
    run.add_argument(
        "--net-config-path",
        default=DEFAULT_NET_CONFIG_PATH,
        help="the network config file (flannel's net-conf.json)",
    )
    run.add_argument(
        "--cni-conf-file",
        default=None,
        help="the conflist to install once subnet.env is written (kube-flannel's "
        "cni-conf.json; default: podnet's flannel -> bridge -> host-local)",
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
        kubeconfig=args.kubeconfig,
        net_config_path=args.net_config_path,
        cni_conf_file=args.cni_conf_file,
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
    except (ConfigError, CredentialsError, OSError) as exc:
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
