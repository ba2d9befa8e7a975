"""`podnet agent ...`: the node agent."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping
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
    DaemonSettings,
    InterfaceOptions,
    interface_options,
)
from podnet.cli._daemon import log_to_stderr, stop_on_signals
from podnet.cni import ALL_VERSIONS
from podnet.kube import CredentialsError
from podnet.runtime import DEFAULT_BIN_DIR, DEFAULT_CACHE_DIR, DEFAULT_CONF_DIR


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
    add_interface_arguments(run)
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
    run.add_argument("--bin-dir", default=DEFAULT_BIN_DIR)
    run.add_argument("--conf-dir", default=DEFAULT_CONF_DIR)
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


# flanneld reads a flag not given on the command line from FLANNELD_<FLAG> (one value each)
INTERFACE_FLAGS = ("iface", "iface_regex", "iface_can_reach", "public_ip", "public_ipv6")


def add_interface_arguments(run: Any) -> None:
    """flanneld's interface flags, with its precedence: --iface, then --iface-regex, then
    --iface-can-reach; none of them: the default route's interface."""
    run.add_argument(
        "--iface",
        action="append",
        default=None,
        metavar="NAME|ADDRESS",
        help="interface facing the other nodes, by name or by an address it holds; "
        "repeat to try each in turn, the first found wins (default: the default route's "
        "interface, as flanneld; env FLANNELD_IFACE)",
    )
    run.add_argument(
        "--iface-regex",
        action="append",
        default=None,
        metavar="REGEX",
        help="the first interface with an address, else a name, the regex matches; repeat "
        "to try each in turn, after every --iface (default: none; env FLANNELD_IFACE_REGEX)",
    )
    run.add_argument(
        "--iface-can-reach",
        default=None,
        metavar="ADDRESS",
        help="the interface of the route to this IPv4 address (`ip route get`), tried "
        "last (default: none; env FLANNELD_IFACE_CAN_REACH)",
    )
    run.add_argument(
        "--public-ip",
        default=None,
        metavar="ADDRESS",
        help="the IPv4 address other nodes reach this one at (annotation public-ip); "
        "alone, it also picks the interface holding it (default: the interface's first "
        "IPv4 address; env FLANNELD_PUBLIC_IP)",
    )
    run.add_argument(
        "--public-ipv6",
        default=None,
        metavar="ADDRESS",
        help="the IPv6 address other nodes reach this one at (default: the interface's "
        "first IPv6 address, with EnableIPv6; env FLANNELD_PUBLIC_IPV6)",
    )


def interface_from(args: argparse.Namespace, environ: Mapping[str, str]) -> InterfaceOptions:
    """The interface options from the flags, each flag not given from its FLANNELD_
    variable as flanneld reads them; ConfigError for a public address that is not one."""
    given: dict[str, list[str]] = {}
    for flag in INTERFACE_FLAGS:
        value = getattr(args, flag)
        if value is None:
            from_env = environ.get(f"FLANNELD_{flag.upper()}", "")
            value = [from_env] if from_env else []
        elif isinstance(value, str):
            value = [value]
        given[flag] = list(value)
    return interface_options(
        ifaces=given["iface"],
        regexes=given["iface_regex"],
        can_reach=next(iter(given["iface_can_reach"]), ""),
        public_ip=next(iter(given["public_ip"]), ""),
        public_ipv6=next(iter(given["public_ipv6"]), ""),
    )


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
    try:
        interface = interface_from(args, os.environ)
    except ConfigError as exc:
        print(f"podnet agent: {exc}", file=sys.stderr)
        return 2
    log_to_stderr()
    settings = DaemonSettings(
        node=node,
        interface=interface,
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
