"""Cluster-state commands: nodes, events, and the node IPAM controller.

    podnet node register NAME --address IP [--annotation KEY=VALUE]...
    podnet node delete NAME
    podnet get nodes [-o wide|json|yaml|name]
    podnet get node NAME [-o wide|json|yaml|name]
    podnet get events [-o json|yaml]
    podnet nodeipam run --cluster-cidr CIDR[,CIDR] [--node-cidr-mask-size[-ipv4|-ipv6] N]
                        [--service-cluster-ip-range CIDR[,CIDR]] [--metrics-port P]
                        [--kubeconfig FILE [--leader-elect...]]   (see _nodeipam_api.py)
    podnet nodeipam plan --cluster-cidr CIDR[,CIDR] [...same flags] [-o json]

Every command takes --store URL (else $PODNET_STORE, else the sqlite default); `nodeipam
run` talks to the Kubernetes API instead with --kubeconfig or inside a pod. Problems
are one line on stderr and a non-zero exit, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from podnet.cli._daemon import log_to_stderr, stop_on_signals
from podnet.cli._nodeipam_api import add_api_flags, run_through_api
from podnet.cli._table import table
from podnet.cli._yaml import dump_yaml
from podnet.kube import CredentialsError
from podnet.nodeipam import (
    ConfigError,
    Controller,
    LeaderElectionConfigError,
    MetricsServer,
    NodeIPAMConfig,
    parse_config,
    plan,
)
from podnet.store import (
    STORE_ENV,
    Nodes,
    Store,
    StoreError,
    list_events,
    open_store,
    parse_rfc3339,
    store_url,
)

EXIT_FAILURE = 1
Handler = Callable[[argparse.Namespace], int]


class CommandError(Exception):
    """A problem the user must fix; printed as one line."""


def register(subparsers: Any) -> None:
    """Add `node`, `get` and `nodeipam` to the podnet command."""
    store_flag = argparse.ArgumentParser(add_help=False)
    store_flag.add_argument(
        "--store",
        metavar="URL",
        help=f"cluster store: sqlite:///PATH or etcd://HOST:PORT,... (default: ${STORE_ENV} "
        "or sqlite:///var/lib/podnet/cluster.db)",
    )

    node = subparsers.add_parser("node", help="register or delete nodes")
    node_commands = node.add_subparsers(dest="node_command", metavar="COMMAND", required=True)
    reg = node_commands.add_parser("register", parents=[store_flag], help="register a node")
    reg.add_argument("name")
    reg.add_argument("--address", action="append", default=[], metavar="IP",
                     help="the node's InternalIP (repeatable)")  # fmt: skip
    reg.add_argument("--annotation", action="append", default=[], metavar="KEY=VALUE")
    reg.set_defaults(handler=_guarded(cmd_node_register))
    delete = node_commands.add_parser("delete", parents=[store_flag], help="delete a node")
    delete.add_argument("name")
    delete.set_defaults(handler=_guarded(cmd_node_delete))

    get = subparsers.add_parser("get", parents=[store_flag], help="show nodes or events")
    get.add_argument("resource", choices=sorted(_RESOURCES), metavar="RESOURCE",
                     help="nodes (node, no) or events (event, ev)")  # fmt: skip
    get.add_argument("name", nargs="?")
    get.add_argument("-o", "--output", choices=["wide", "json", "yaml", "name"])
    get.set_defaults(handler=_guarded(cmd_get))

    ipam = subparsers.add_parser("nodeipam", help="the node IPAM controller")
    ipam_commands = ipam.add_subparsers(dest="ipam_command", metavar="COMMAND", required=True)
    run = ipam_commands.add_parser("run", parents=[store_flag], help="allocate podCIDRs")
    _config_flags(run)
    add_api_flags(run)
    run.add_argument("--metrics-port", type=int, metavar="PORT",
                     help="serve Prometheus metrics on this port (/metrics)")  # fmt: skip
    run.add_argument("--metrics-address", default="127.0.0.1", metavar="ADDR")
    run.set_defaults(handler=_guarded(cmd_nodeipam_run))
    plan_cmd = ipam_commands.add_parser(
        "plan", parents=[store_flag], help="show what new flags would do to every node"
    )
    _config_flags(plan_cmd)
    plan_cmd.add_argument("-o", "--output", choices=["json"])
    plan_cmd.set_defaults(handler=_guarded(cmd_nodeipam_plan))


def _config_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cluster-cidr", required=True, metavar="CIDR[,CIDR]")
    for flag in (
        "--node-cidr-mask-size",
        "--node-cidr-mask-size-ipv4",
        "--node-cidr-mask-size-ipv6",
    ):
        parser.add_argument(flag, type=int, default=0, metavar="N")
    parser.add_argument("--service-cluster-ip-range", metavar="CIDR[,CIDR]")


def _guarded(handler: Handler) -> Handler:
    """Run a command; expected failures become one line on stderr and exit status 1."""

    def run(args: argparse.Namespace) -> int:
        try:
            return handler(args)
        except (
            CommandError, StoreError, ConfigError, CredentialsError,
            LeaderElectionConfigError,
        ) as exc:  # fmt: skip
            print(f"podnet: {exc}", file=sys.stderr)
            return EXIT_FAILURE
        except OSError as exc:  # e.g. the metrics port is taken
            print(f"podnet: {exc}", file=sys.stderr)
            return EXIT_FAILURE

    return run


@contextmanager
def _store(args: argparse.Namespace) -> Iterator[Store]:
    store = open_store(store_url(args.store))
    try:
        yield store
    finally:
        store.close()


# -- node ------------------------------------------------------------------------------------
def cmd_node_register(args: argparse.Namespace) -> int:
    annotations = {}
    for item in args.annotation:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise CommandError(f"--annotation {item!r}: want KEY=VALUE")
        annotations[key] = value
    with _store(args) as store:
        node = Nodes(store).register(args.name, addresses=args.address, annotations=annotations)
    print(f"node/{node.name} registered")
    return 0


def cmd_node_delete(args: argparse.Namespace) -> int:
    with _store(args) as store:
        if not Nodes(store).delete(args.name):
            raise CommandError(f'nodes "{args.name}" not found')
    print(f'node "{args.name}" deleted')
    return 0


# -- get ---------------------------------------------------------------------------------------
_RESOURCES = {"nodes": "nodes", "node": "nodes", "no": "nodes",
              "events": "events", "event": "events", "ev": "events"}  # fmt: skip


def cmd_get(args: argparse.Namespace) -> int:
    resource = _RESOURCES[args.resource]
    with _store(args) as store:
        if resource == "nodes":
            return _get_nodes(store, args.name, args.output)
        if args.name:
            raise CommandError("get events takes no name")
        return _get_events(store, args.output)


def _get_nodes(store: Store, name: str | None, output: str | None) -> int:
    nodes_api = Nodes(store)
    if name:
        nodes = [nodes_api.require(name)]
        revision = nodes[0].resource_version
    else:
        nodes, revision = nodes_api.list()
    if output in ("json", "yaml"):
        data: Any = (
            nodes[0].to_json()
            if name
            else {
                "apiVersion": "v1",
                "kind": "List",
                "items": [n.to_json() for n in nodes],
                "metadata": {"resourceVersion": str(revision)},
            }
        )
        _print_document(data, output)
        return 0
    if output == "name":
        for node in nodes:
            print(f"node/{node.name}")
        return 0
    if not nodes:
        print("No resources found", file=sys.stderr)
        return 0
    now = time.time()
    if output == "wide":
        header = ["NAME", "POD-CIDRS", "INTERNAL-IP", "AGE", "RESOURCE-VERSION", "ANNOTATIONS"]
        rows = [
            [
                n.name,
                ",".join(n.pod_cidrs) or "<none>",
                n.internal_ip or "<none>",
                _age(n.creation_timestamp, now),
                str(n.resource_version),
                ",".join(f"{k}={v}" for k, v in sorted(n.annotations.items())) or "<none>",
            ]
            for n in nodes
        ]
    else:
        header = ["NAME", "POD-CIDR", "INTERNAL-IP", "AGE"]
        rows = [
            [
                n.name,
                n.pod_cidr or "<none>",
                n.internal_ip or "<none>",
                _age(n.creation_timestamp, now),
            ]
            for n in nodes
        ]
    _print_table(header, rows)
    return 0


def _get_events(store: Store, output: str | None) -> int:
    events = list_events(store)
    if output in ("json", "yaml"):
        data = {"apiVersion": "v1", "kind": "List", "items": [e.to_json() for e in events]}
        _print_document(data, output)
        return 0
    if output == "name":
        for event in events:
            print(f"event/{event.name}")
        return 0
    if not events:
        print("No resources found", file=sys.stderr)
        return 0
    now = time.time()
    rows = [
        [
            _age(e.last_timestamp, now) + (f" (x{e.count})" if e.count > 1 else ""),
            e.type,
            e.reason,
            f"{e.object_kind.lower()}/{e.object_name}",
            e.message,
        ]
        for e in events
    ]
    _print_table(["LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"], rows)
    return 0


def _print_document(data: Any, output: str) -> None:
    if output == "json":
        print(json.dumps(data, indent=4))
    else:
        sys.stdout.write(dump_yaml(data))


def _print_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    print(table(header, rows, gap=3))  # kubectl's column gap


def _age(stamp: str, now: float) -> str:
    """kubectl's short ages: 45s, 3m20s, 25m, 5h30m, 2d4h, 10d."""
    then = parse_rfc3339(stamp)
    if not then:
        return "<unknown>"
    seconds = max(0, int(now - then))
    minutes, hours, days = seconds // 60, seconds // 3600, seconds // 86400
    if seconds < 120:
        return f"{seconds}s"
    if minutes < 10:
        return f"{minutes}m{seconds % 60}s" if seconds % 60 else f"{minutes}m"
    if hours < 3:
        return f"{minutes}m"
    if hours < 8:
        return f"{hours}h{minutes % 60}m" if minutes % 60 else f"{hours}h"
    if days < 2:
        return f"{hours}h"
    if days < 8:
        return f"{days}d{hours % 24}h" if hours % 24 else f"{days}d"
    return f"{days}d"


# -- nodeipam ---------------------------------------------------------------------------------
def _config(args: argparse.Namespace) -> NodeIPAMConfig:
    return parse_config(
        args.cluster_cidr,
        node_cidr_mask_size=args.node_cidr_mask_size,
        node_cidr_mask_size_ipv4=args.node_cidr_mask_size_ipv4,
        node_cidr_mask_size_ipv6=args.node_cidr_mask_size_ipv6,
        service_cluster_ip_range=args.service_cluster_ip_range,
    )


def cmd_nodeipam_run(args: argparse.Namespace) -> int:
    config = _config(args)
    if args.kubeconfig and args.store:
        raise CommandError("--kubeconfig and --store: give one (the API, or the store directly)")
    log_to_stderr()
    stop = stop_on_signals()
    if args.kubeconfig or (not args.store and os.environ.get("KUBERNETES_SERVICE_HOST")):
        return run_through_api(args, config, stop)
    with _store(args) as store:
        controller = Controller(store, config)
        metrics = None
        if args.metrics_port is not None:
            metrics = MetricsServer(
                controller, port=args.metrics_port, address=args.metrics_address
            ).start()
            logging.getLogger("podnet.nodeipam").info(
                "metrics on http://%s:%d/metrics", args.metrics_address, metrics.port
            )
        try:
            controller.run(stop)
        finally:
            if metrics is not None:
                metrics.stop()
    return 0


def cmd_nodeipam_plan(args: argparse.Namespace) -> int:
    config = _config(args)
    with _store(args) as store:
        nodes, _ = Nodes(store).list()
    entries = plan(nodes, config)
    if args.output == "json":
        data = [
            {"node": e.node, "podCIDRs": list(e.pod_cidrs), "action": e.action, "detail": e.detail}
            for e in entries
        ]
        print(json.dumps(data, indent=4))
        return 0
    if not entries:
        print("No nodes", file=sys.stderr)
        return 0
    rows = [
        [e.node, ",".join(e.pod_cidrs) or "<none>", e.action.upper(), e.detail] for e in entries
    ]
    _print_table(["NODE", "POD-CIDRS", "ACTION", "DETAIL"], rows)
    return 0
